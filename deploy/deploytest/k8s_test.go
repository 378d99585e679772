package deploytest

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// kinds are the API types the manifests may use; anything else fails.
var kinds = map[string]func() any{
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
}

// decodeStrict decodes one manifest into its API type; unknown or
// duplicate fields are errors, as `kubectl apply --validate=strict` has it.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("%s %s: not a kind these manifests use (add it to kinds)", tm.APIVersion, tm.Kind)
	}
	obj := mk()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

func k8sDir(t *testing.T) string { return filepath.Join(testkit.RepoRoot(t), "deploy", "k8s") }

// TestK8sManifestsDecodeStrictly reads every YAML file under deploy/k8s:
// kustomization files into kustomize's own type, the rest into the
// Kubernetes API types.
func TestK8sManifestsDecodeStrictly(t *testing.T) {
	var files int
	err := filepath.WalkDir(k8sDir(t), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		if filepath.Base(path) == "kustomization.yaml" {
			var k kustypes.Kustomization
			require.NoError(t, yaml.UnmarshalStrict(data, &k), path)
			return nil
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			_, err := decodeStrict(doc)
			require.NoError(t, err, "%s, document %d", path, i+1)
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 8)
}

// built is one kustomize build, decoded.
type built struct {
	objects     []any
	deployments []*appsv1.Deployment
	statefuls   []*appsv1.StatefulSet
	services    []*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	policies    []*networkingv1.NetworkPolicy
}

func kustomizeBuild(t *testing.T, dir string) *built {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	b := &built{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		require.NoError(t, err)
		obj, err := decodeStrict(doc)
		require.NoError(t, err, "%s built by kustomize from %s", r.CurId(), dir)
		b.objects = append(b.objects, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			b.deployments = append(b.deployments, o)
		case *appsv1.StatefulSet:
			b.statefuls = append(b.statefuls, o)
		case *corev1.Service:
			b.services = append(b.services, o)
		case *corev1.ConfigMap:
			b.configMaps[o.Name] = o
		case *corev1.Secret:
			b.secrets[o.Name] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			b.hpas = append(b.hpas, o)
		case *policyv1.PodDisruptionBudget:
			b.pdbs = append(b.pdbs, o)
		case *networkingv1.NetworkPolicy:
			b.policies = append(b.policies, o)
		}
	}
	return b
}

// workload is what the invariants need of a Deployment or StatefulSet.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
}

func (b *built) workloads() []workload {
	var out []workload
	for _, d := range b.deployments {
		out = append(out, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range b.statefuls {
		out = append(out, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Template})
	}
	return out
}

// selects reports whether some workload's pods carry every label of sel.
func (b *built) selects(sel map[string]string) []string {
	var names []string
	for _, w := range b.workloads() {
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(w.pod.Labels)) {
			names = append(names, w.name)
		}
	}
	return names
}

func (b *built) workload(name string) *workload {
	for _, w := range b.workloads() {
		if w.name == name {
			return &w
		}
	}
	return nil
}

func TestK8sOverlaysBuild(t *testing.T) {
	overlays, err := filepath.Glob(filepath.Join(k8sDir(t), "overlays", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, overlays)
	for _, dir := range append([]string{filepath.Join(k8sDir(t), "base")}, overlays...) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			b := kustomizeBuild(t, dir)
			checkWorkloads(t, b, name)
			checkServices(t, b)
			checkFrontdoor(t, b)
			checkStreamsvc(t, b)
			checkNetworkPolicies(t, b)
			checkMountedConfig(t, b)
		})
	}
}

// checkWorkloads: resources, probes, non-root and our own images everywhere.
func checkWorkloads(t *testing.T, b *built, overlay string) {
	ws := b.workloads()
	var names []string
	for _, w := range ws {
		names = append(names, w.name)
	}
	slices.Sort(names)
	require.Equal(t, []string{"authsvc", "frontdoor", "router", "streamsvc"}, names, "one workload per service (linkd joins when it is built)")
	for _, w := range ws {
		what := w.kind + " " + w.name
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		require.NoError(t, err, what)
		require.True(t, sel.Matches(labels.Set(w.pod.Labels)), "%s: selector does not match its own pods", what)
		psc := w.pod.Spec.SecurityContext
		require.NotNil(t, psc, "%s: pod securityContext", what)
		require.True(t, psc.RunAsNonRoot != nil && *psc.RunAsNonRoot, "%s: runAsNonRoot", what)
		require.True(t, psc.RunAsUser != nil && *psc.RunAsUser != 0, "%s: runAsUser must be non-root", what)
		require.NotEmpty(t, w.pod.Spec.Containers, what)
		for _, c := range w.pod.Spec.Containers {
			what := what + " container " + c.Name
			require.False(t, c.Resources.Requests.Cpu().IsZero(), "%s: cpu request", what)
			require.False(t, c.Resources.Requests.Memory().IsZero(), "%s: memory request", what)
			require.False(t, c.Resources.Limits.Memory().IsZero(), "%s: memory limit", what)
			for probeName, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				require.NotNil(t, p, "%s: %s probe", what, probeName)
				require.NotNil(t, p.HTTPGet, "%s: %s probe is an HTTP GET", what, probeName)
				require.Equal(t, "/healthz", p.HTTPGet.Path, "%s: %s probe", what, probeName)
				require.True(t, hasPort(c, p.HTTPGet.Port), "%s: %s probe port %s is not a container port", what, probeName, p.HTTPGet.Port.String())
			}
			csc := c.SecurityContext
			require.NotNil(t, csc, "%s: securityContext", what)
			require.True(t, csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation", what)
			require.True(t, csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem, "%s: readOnlyRootFilesystem", what)
			require.NotNil(t, csc.Capabilities, what)
			require.Contains(t, csc.Capabilities.Drop, corev1.Capability("ALL"), "%s: drop ALL capabilities", what)
			require.True(t, csc.RunAsUser == nil || *csc.RunAsUser != 0, "%s: runAsUser 0", what)
			// Images are ours: <registry/>switchyard/<service>:<tag>.
			repo, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")
			require.True(t, ok && tag != "", "%s: image %s has no tag", what, c.Image)
			require.Equal(t, w.name, repo, "%s: image %s", what, c.Image)
			require.True(t, strings.HasSuffix(strings.TrimSuffix(c.Image, ":"+tag), "switchyard/"+w.name), "%s: image %s is not ours", what, c.Image)
			if overlay != "production" {
				require.True(t, strings.HasPrefix(c.Image, "switchyard/"), "%s: image %s is not the one make images builds", what, c.Image)
			}
			// Whatever the pod mounts or reads exists in the build.
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil {
					cm := b.configMaps[r.ConfigMapKeyRef.Name]
					require.NotNil(t, cm, "%s: env %s reads ConfigMap %s", what, e.Name, r.ConfigMapKeyRef.Name)
					require.Contains(t, cm.Data, r.ConfigMapKeyRef.Key, "%s: env %s", what, e.Name)
				}
			}
		}
		for _, v := range w.pod.Spec.Volumes {
			if v.ConfigMap != nil {
				require.Contains(t, b.configMaps, v.ConfigMap.Name, "%s: volume %s", what, v.Name)
			}
			if v.Secret != nil {
				require.Contains(t, b.secrets, v.Secret.SecretName, "%s: volume %s", what, v.Name)
			}
		}
	}
}

func hasPort(c corev1.Container, p intstr.IntOrString) bool {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return true
		}
	}
	return false
}

// checkServices: every Service selects pods that exist and ports they
// expose; one LoadBalancer, for the frontdoors' clients.
func checkServices(t *testing.T, b *built) {
	var lbs []string
	for _, s := range b.services {
		targets := b.selects(s.Spec.Selector)
		require.Len(t, targets, 1, "Service %s selects %v", s.Name, targets)
		w := b.workload(targets[0])
		for _, p := range s.Spec.Ports {
			found := false
			for _, c := range w.pod.Spec.Containers {
				found = found || hasPort(c, p.TargetPort)
			}
			require.True(t, found, "Service %s port %s: target %s is no port of %s", s.Name, p.Name, p.TargetPort.String(), w.name)
		}
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			lbs = append(lbs, s.Name+"→"+targets[0])
		}
	}
	if len(lbs) > 0 { // the dev overlay uses a NodePort
		require.Equal(t, []string{"nats→frontdoor"}, lbs, "the only LoadBalancer is the clients' one")
	}
	router := serviceNamed(b, "router")
	require.NotNil(t, router, "the routers' headless Service")
	require.Equal(t, corev1.ClusterIPNone, router.Spec.ClusterIP, "router discovery needs a headless Service (one address per replica)")
	for _, h := range b.hpas {
		require.Equal(t, "Deployment", h.Spec.ScaleTargetRef.Kind)
		require.NotNil(t, b.workload(h.Spec.ScaleTargetRef.Name), "HPA %s scales a missing Deployment", h.Name)
	}
	for _, p := range b.pdbs {
		require.NotEmpty(t, b.selects(p.Spec.Selector.MatchLabels), "PDB %s selects no pods", p.Name)
	}
}

func serviceNamed(b *built, name string) *corev1.Service {
	for _, s := range b.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// checkFrontdoor: readiness on /healthz, lame duck in preStop, a grace
// period longer than the configured lame_duck_duration, an HPA and a PDB.
func checkFrontdoor(t *testing.T, b *built) {
	w := b.workload("frontdoor")
	require.NotNil(t, w)
	c := w.pod.Spec.Containers[0]
	require.NotNil(t, c.Lifecycle, "frontdoor: preStop")
	require.NotNil(t, c.Lifecycle.PreStop, "frontdoor: preStop")
	require.NotNil(t, c.Lifecycle.PreStop.Exec, "frontdoor: preStop exec (no shell in the image)")
	require.Equal(t, []string{"/frontdoor", "--signal", "ldm"}, c.Lifecycle.PreStop.Exec.Command)

	// The configuration the pods mount says how long lame duck lasts.
	var conf *corev1.ConfigMap
	for _, v := range w.pod.Spec.Volumes {
		if v.ConfigMap != nil {
			conf = b.configMaps[v.ConfigMap.Name]
		}
	}
	require.NotNil(t, conf, "frontdoor mounts a ConfigMap")
	require.Contains(t, c.Args, "/etc/switchyard/conf/switchyard.conf")
	cfg, err := config.Parse(conf.Data["switchyard.conf"])
	require.NoError(t, err, "switchyard.conf")
	grace := time.Duration(*w.pod.Spec.TerminationGracePeriodSeconds) * time.Second
	require.Greater(t, grace, cfg.LameDuckDuration+5*time.Second, "terminationGracePeriodSeconds must outlast lame_duck_duration")
	require.Equal(t, int32(cfg.HTTPPort), portNamed(c, "monitor"), "http_port in switchyard.conf vs the monitor port")
	require.Equal(t, int32(cfg.Port), portNamed(c, "client"), "port in switchyard.conf vs the client port")
	if cfg.WebSocket != nil && cfg.WebSocket.Port != 0 {
		require.Equal(t, int32(cfg.WebSocket.Port), portNamed(c, "websocket"), "websocket port in switchyard.conf vs the websocket port")
	}

	hpa := false
	for _, h := range b.hpas {
		hpa = hpa || h.Spec.ScaleTargetRef.Name == "frontdoor"
	}
	require.True(t, hpa, "frontdoor has a HorizontalPodAutoscaler")
	pdb := false
	for _, p := range b.pdbs {
		pdb = pdb || slices.Contains(b.selects(p.Spec.Selector.MatchLabels), "frontdoor")
	}
	require.True(t, pdb, "frontdoor has a PodDisruptionBudget")
	adv := false
	for _, e := range c.Env {
		adv = adv || e.Name == "SWITCHYARD_CLIENT_ADVERTISE"
	}
	require.True(t, adv, "frontdoors advertise the LoadBalancer's address, not pod IPs")
}

func portNamed(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// checkStreamsvc: a StatefulSet whose store is a PersistentVolumeClaim.
func checkStreamsvc(t *testing.T, b *built) {
	require.Len(t, b.statefuls, 1)
	s := b.statefuls[0]
	require.Equal(t, "streamsvc", s.Name)
	require.Len(t, s.Spec.VolumeClaimTemplates, 1)
	claim := s.Spec.VolumeClaimTemplates[0].Name
	mounted := false
	for _, m := range s.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == claim && m.MountPath == "/data")
	}
	require.True(t, mounted, "streamsvc stores on its claim at /data")
	require.NotNil(t, serviceNamed(b, s.Spec.ServiceName), "the StatefulSet's governing Service")
}

// checkNetworkPolicies: ingress is denied by default, and the only rule
// open to any source is the frontdoors' client port.
func checkNetworkPolicies(t *testing.T, b *built) {
	deny := false
	covered := map[string]bool{}
	for _, p := range b.policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 && len(p.Spec.Ingress) == 0 {
			deny = true
		}
		for _, name := range b.selects(p.Spec.PodSelector.MatchLabels) {
			covered[name] = true
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.From) > 0 {
				continue
			}
			targets := b.selects(p.Spec.PodSelector.MatchLabels)
			require.Equal(t, []string{"frontdoor"}, targets, "NetworkPolicy %s opens pods to any source", p.Name)
			for _, port := range rule.Ports {
				require.NotNil(t, port.Port)
				require.Contains(t, []int32{4222, 8080}, port.Port.IntVal, "NetworkPolicy %s opens a frontdoor port other than clients'", p.Name)
			}
			require.NotEmpty(t, rule.Ports, "NetworkPolicy %s opens every port", p.Name)
		}
	}
	require.True(t, deny, "a default-deny ingress NetworkPolicy")
	for _, w := range b.workloads() {
		require.True(t, covered[w.name], "no NetworkPolicy lets anything reach %s", w.name)
	}
}

// checkMountedConfig lays out the ConfigMaps and Secrets as each pod mounts
// them and loads the -c file its container is started with, includes and
// all, as the service would.
func checkMountedConfig(t *testing.T, b *built) {
	for _, w := range b.workloads() {
		root := t.TempDir()
		for _, c := range w.pod.Spec.Containers {
			for _, m := range c.VolumeMounts {
				files := map[string][]byte{}
				for _, v := range w.pod.Spec.Volumes {
					switch {
					case v.Name != m.Name:
					case v.ConfigMap != nil:
						for k, d := range b.configMaps[v.ConfigMap.Name].Data {
							files[k] = []byte(d)
						}
					case v.Secret != nil:
						maps.Copy(files, b.secrets[v.Secret.SecretName].Data)
					}
				}
				for k, d := range files {
					dir := filepath.Join(root, m.MountPath)
					require.NoError(t, os.MkdirAll(dir, 0o700))
					require.NoError(t, os.WriteFile(filepath.Join(dir, k), d, 0o600))
				}
			}
			if i := slices.Index(c.Args, "-c"); i >= 0 {
				_, err := config.Load(filepath.Join(root, c.Args[i+1]))
				require.NoError(t, err, "%s: the configuration it is started with", w.name)
			}
		}
	}
}
