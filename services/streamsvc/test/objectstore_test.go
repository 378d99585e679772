package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// The object store: nats.go's jetstream.ObjectStore and the nats CLI's
// object commands on a bucket (a stream OBJ_<bucket> holding chunks on
// $O.<bucket>.C.<nuid> and one rolled-up meta message per object on
// $O.<bucket>.M.<name in base64>).

func createObjectStore(t *testing.T, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) jetstream.ObjectStore {
	t.Helper()
	return retryCreate(t, func(c context.Context) (jetstream.ObjectStore, error) { return js.CreateObjectStore(c, cfg) })
}

// openObjectStore binds to a bucket through js and waits until it
// answers there.
func openObjectStore(t *testing.T, js jetstream.JetStream, bucket string) jetstream.ObjectStore {
	t.Helper()
	var obs jetstream.ObjectStore
	eventually(t, func() bool {
		var err error
		if obs, err = js.ObjectStore(attempt(t), bucket); err != nil {
			return false
		}
		_, err = obs.GetInfo(attempt(t), "no such object")
		return errors.Is(err, jetstream.ErrObjectNotFound)
	}, "object store %s does not answer", bucket)
	return obs
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func TestObjectStoreBucketLifecycle(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	createObjectStore(t, jsA, jetstream.ObjectStoreConfig{Bucket: "FILES", Description: "build outputs", TTL: time.Hour})

	st, err := jsB.Stream(ctx(t), "OBJ_FILES")
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	require.Equal(t, []string{"$O.FILES.C.>", "$O.FILES.M.>"}, cfg.Subjects)
	require.True(t, cfg.AllowRollup)
	require.True(t, cfg.AllowDirect)
	require.Equal(t, jetstream.DiscardNew, cfg.Discard)
	require.Equal(t, time.Hour, cfg.MaxAge)

	obs := openObjectStore(t, jsB, "FILES")
	_, err = obs.PutBytes(ctx(t), "a", []byte("alpha"))
	require.NoError(t, err)
	status, err := obs.Status(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "FILES", status.Bucket())
	require.Equal(t, "build outputs", status.Description())
	require.Equal(t, time.Hour, status.TTL())
	require.False(t, status.Sealed())
	require.Equal(t, "JetStream", status.BackingStore())
	require.NotZero(t, status.Size())

	var names []string
	for n := range jsA.ObjectStoreNames(ctx(t)).Name() {
		names = append(names, n)
	}
	require.Equal(t, []string{"FILES"}, names)

	_, err = jsA.UpdateObjectStore(ctx(t), jetstream.ObjectStoreConfig{Bucket: "FILES", Description: "kept longer", TTL: 2 * time.Hour})
	require.NoError(t, err)
	status, err = obs.Status(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, status.TTL())

	require.NoError(t, jsB.DeleteObjectStore(ctx(t), "FILES"))
	_, err = jsA.ObjectStore(ctx(t), "FILES")
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound)
}

// An object of many chunks is put through one entry point and read back
// whole, with its digest, through the other; putting the same name again
// replaces it and purges the old chunks; delete leaves a marker.
func TestObjectStorePutGet(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	a := createObjectStore(t, jsA, jetstream.ObjectStoreConfig{Bucket: "BLOBS"})
	b := openObjectStore(t, jsB, "BLOBS")

	data := randomBytes(t, 1<<20+12345)
	info, err := a.Put(ctx(t), jetstream.ObjectMeta{
		Name:        "images/base.tar",
		Description: "base image",
		Headers:     nats.Header{"Owner": []string{"ops"}},
		Metadata:    map[string]string{"arch": "amd64"},
		Opts:        &jetstream.ObjectMetaOptions{ChunkSize: 64 * 1024},
	}, bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, uint64(len(data)), info.Size)
	require.Equal(t, uint32(len(data)/(64*1024)+1), info.Chunks)
	sum := sha256.Sum256(data)
	require.Equal(t, "SHA-256="+base64.URLEncoding.EncodeToString(sum[:]), info.Digest)

	got, err := b.GetBytes(ctx(t), "images/base.tar")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the object read back differs")

	gi, err := b.GetInfo(ctx(t), "images/base.tar")
	require.NoError(t, err)
	require.Equal(t, "base image", gi.Description)
	require.Equal(t, "ops", gi.Headers.Get("Owner"))
	require.Equal(t, "amd64", gi.Metadata["arch"])
	require.Equal(t, info.NUID, gi.NUID)

	// Putting the same name replaces the object; its old chunks go.
	_, err = b.PutString(ctx(t), "images/base.tar", "small now")
	require.NoError(t, err)
	s, err := a.GetString(ctx(t), "images/base.tar")
	require.NoError(t, err)
	require.Equal(t, "small now", s)
	st, err := jsA.Stream(ctx(t), "OBJ_BLOBS")
	require.NoError(t, err)
	si, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2), si.State.Msgs, "one chunk and one meta message are left")

	// Empty objects have no chunk.
	_, err = a.PutBytes(ctx(t), "empty", nil)
	require.NoError(t, err)
	e, err := b.GetBytes(ctx(t), "empty")
	require.NoError(t, err)
	require.Empty(t, e)

	require.NoError(t, a.Delete(ctx(t), "images/base.tar"))
	_, err = b.Get(ctx(t), "images/base.tar")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)
	deleted, err := b.GetInfo(ctx(t), "images/base.tar", jetstream.GetObjectInfoShowDeleted())
	require.NoError(t, err)
	require.True(t, deleted.Deleted)
	require.Zero(t, deleted.Size)

	// Files go in and come out whole.
	dir := t.TempDir()
	src := filepath.Join(dir, "in.bin")
	require.NoError(t, os.WriteFile(src, randomBytes(t, 300_000), 0o600))
	_, err = a.PutFile(ctx(t), src)
	require.NoError(t, err)
	dst := filepath.Join(dir, "out.bin")
	require.NoError(t, b.GetFile(ctx(t), src, dst))
	want, _ := os.ReadFile(src)
	have, _ := os.ReadFile(dst)
	require.True(t, bytes.Equal(want, have))
}

// List, metadata updates, links and watch.
func TestObjectStoreListLinksWatch(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	a := createObjectStore(t, jsA, jetstream.ObjectStoreConfig{Bucket: "DOCS"})
	b := openObjectStore(t, jsB, "DOCS")

	w, err := b.Watch(ctx(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Stop() })
	next := func() *jetstream.ObjectInfo {
		select {
		case u := <-w.Updates():
			return u
		case <-time.After(wait):
			t.Fatal("no watch update within the wait")
			return nil
		}
	}
	require.Nil(t, next(), "an empty bucket has no initial values")

	_, err = a.PutString(ctx(t), "readme", "hello")
	require.NoError(t, err)
	require.Equal(t, "readme", next().Name)
	_, err = a.PutString(ctx(t), "guide", "world")
	require.NoError(t, err)
	require.Equal(t, "guide", next().Name)

	list, err := b.List(ctx(t))
	require.NoError(t, err)
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	require.ElementsMatch(t, []string{"readme", "guide"}, names)

	require.NoError(t, a.UpdateMeta(ctx(t), "guide", jetstream.ObjectMeta{Name: "manual", Description: "renamed"}))
	u := next()
	require.Equal(t, "manual", u.Name)
	require.Equal(t, "renamed", u.Description)
	_, err = b.GetInfo(ctx(t), "guide")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound, "the old name is gone")
	m, err := b.GetString(ctx(t), "manual")
	require.NoError(t, err)
	require.Equal(t, "world", m)

	// A link to an object reads as the object; a link to a bucket is
	// only metadata.
	readme, err := a.GetInfo(ctx(t), "readme")
	require.NoError(t, err)
	_, err = a.AddLink(ctx(t), "latest", readme)
	require.NoError(t, err)
	require.Equal(t, "latest", next().Name)
	l, err := b.GetString(ctx(t), "latest")
	require.NoError(t, err)
	require.Equal(t, "hello", l)
	other := createObjectStore(t, jsA, jetstream.ObjectStoreConfig{Bucket: "OTHER"})
	bl, err := a.AddBucketLink(ctx(t), "others", other)
	require.NoError(t, err)
	require.True(t, bl.Opts.Link.Name == "" && bl.Opts.Link.Bucket == "OTHER")

	require.NoError(t, a.Delete(ctx(t), "readme"))
	d := next()
	require.Equal(t, "others", d.Name)
	d = next()
	require.Equal(t, "readme", d.Name)
	require.True(t, d.Deleted)

	list, err = b.List(ctx(t))
	require.NoError(t, err)
	names = names[:0]
	for _, o := range list {
		names = append(names, o.Name)
	}
	require.ElementsMatch(t, []string{"manual", "latest", "others"}, names)

	// Sealed buckets take no more puts.
	require.NoError(t, a.Seal(ctx(t)))
	_, err = a.PutString(ctx(t), "late", "x")
	require.Error(t, err)
	status, err := b.Status(ctx(t))
	require.NoError(t, err)
	require.True(t, status.Sealed())
}

// Bad input: a meta message whose digest does not match the chunks is
// caught by the client, a chunk over the stream's message size is
// refused and leaves no object, a chunk over max_payload is refused.
func TestObjectStoreBadInput(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	obs := createObjectStore(t, js, jetstream.ObjectStoreConfig{Bucket: "BAD"})
	info, err := obs.PutString(ctx(t), "doc", "the real content")
	require.NoError(t, err)

	// Replace the chunk with other bytes of the same length: the digest
	// in the meta message no longer matches.
	st, err := js.Stream(ctx(t), "OBJ_BAD")
	require.NoError(t, err)
	require.NoError(t, st.Purge(ctx(t), jetstream.WithPurgeSubject("$O.BAD.C."+info.NUID)))
	_, err = js.Publish(ctx(t), "$O.BAD.C."+info.NUID, []byte("the fake content"))
	require.NoError(t, err)
	_, err = obs.GetBytes(ctx(t), "doc")
	require.ErrorIs(t, err, jetstream.ErrDigestMismatch)

	// A stream limit on message size refuses an oversized chunk: the put
	// fails and no chunk is stored (the client may already have sent the
	// meta message before the refusal reached it).
	small := createObjectStore(t, js, jetstream.ObjectStoreConfig{Bucket: "SMALL"})
	_, err = jsUpdateMaxMsgSize(t, js, "OBJ_SMALL", 1024)
	require.NoError(t, err)
	_, err = small.Put(ctx(t), jetstream.ObjectMeta{Name: "big", Opts: &jetstream.ObjectMetaOptions{ChunkSize: 4096}}, bytes.NewReader(randomBytes(t, 10_000)))
	require.Error(t, err)
	require.Contains(t, err.Error(), "message size exceeds maximum allowed")
	sst, err := js.Stream(ctx(t), "OBJ_SMALL")
	require.NoError(t, err)
	ssi, err := sst.Info(ctx(t), jetstream.WithSubjectFilter("$O.SMALL.C.>"))
	require.NoError(t, err)
	require.Empty(t, ssi.State.Subjects, "chunks were stored")

	// A chunk over max_payload never reaches the stream.
	_, err = obs.Put(ctx(t), jetstream.ObjectMeta{Name: "huge", Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(nc.MaxPayload() + 1)}}, bytes.NewReader(randomBytes(t, int(nc.MaxPayload())+10)))
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "maximum payload"), err.Error())
	_, err = obs.GetInfo(ctx(t), "huge")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)
}

func jsUpdateMaxMsgSize(t *testing.T, js jetstream.JetStream, stream string, size int32) (jetstream.Stream, error) {
	t.Helper()
	st, err := js.Stream(ctx(t), stream)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = size
	return js.UpdateStream(ctx(t), cfg)
}

func TestObjectStoreCLI(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	cli := newNatsCLI(t, tg.urls[1])
	waitForAPI(t, js)

	out := cli.run("object", "add", "ART", "--description", "artifacts")
	require.Contains(t, out, "Information for Object Store Bucket ART", out)
	dir := t.TempDir()
	src := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(src, []byte("release notes\n"), 0o600))
	eventually(t, func() bool {
		_, err := cli.try("object", "put", "ART", src, "--name", "notes", "-f")
		return err == nil
	}, "the bucket takes no put")
	out = cli.run("object", "info", "ART", "notes")
	require.Contains(t, out, "Object information for ART > notes", out)
	require.Contains(t, out, "Size: 14 B", out)
	out = cli.run("object", "ls", "ART")
	require.Contains(t, out, "notes", out)
	dst := filepath.Join(dir, "back.txt")
	cli.run("object", "get", "ART", "notes", "--output", dst)
	back, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, "release notes\n", string(back))
	cli.run("object", "rm", "ART", "notes", "-f")
	out = cli.run("object", "ls", "ART")
	require.NotContains(t, out, "notes", out)
	require.Contains(t, cli.run("object", "ls"), "ART")
}
