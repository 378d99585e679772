// Package jsapi is streamsvc's JetStream: the $JS.API.> requests of the
// official clients, answered with nats-server v2.15's JSON, and the
// streams they manage.
package jsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StreamConfig is a stream's configuration, with nats-server's JSON names.
type StreamConfig struct {
	Name                 string            `json:"name"`
	Description          string            `json:"description,omitempty"`
	Subjects             []string          `json:"subjects,omitempty"`
	Retention            string            `json:"retention"`
	MaxConsumers         int               `json:"max_consumers"`
	MaxMsgs              int64             `json:"max_msgs"`
	MaxBytes             int64             `json:"max_bytes"`
	MaxAge               time.Duration     `json:"max_age"`
	MaxMsgsPerSubject    int64             `json:"max_msgs_per_subject"`
	MaxMsgSize           int32             `json:"max_msg_size"`
	Discard              string            `json:"discard"`
	Storage              string            `json:"storage"`
	Replicas             int               `json:"num_replicas"`
	NoAck                bool              `json:"no_ack,omitempty"`
	Duplicates           time.Duration     `json:"duplicate_window,omitempty"`
	Sealed               bool              `json:"sealed"`
	DenyDelete           bool              `json:"deny_delete"`
	DenyPurge            bool              `json:"deny_purge"`
	AllowRollup          bool              `json:"allow_rollup_hdrs"`
	Compression          string            `json:"compression"`
	FirstSeq             uint64            `json:"first_seq,omitempty"`
	AllowDirect          bool              `json:"allow_direct"`
	MirrorDirect         bool              `json:"mirror_direct"`
	Mirror               *StreamSource     `json:"mirror,omitempty"`
	Sources              []*StreamSource   `json:"sources,omitempty"`
	SubjectTransform     *SubjectTransform `json:"subject_transform,omitempty"`
	RePublish            *RePublish        `json:"republish,omitempty"`
	DiscardNewPerSubject bool              `json:"discard_new_per_subject,omitempty"`
	AllowMsgTTL          bool              `json:"allow_msg_ttl"`
	AllowAtomicPublish   bool              `json:"allow_atomic,omitempty"`
	AllowBatchPublish    bool              `json:"allow_batched,omitempty"`
	AllowMsgCounter      bool              `json:"allow_msg_counter,omitempty"`
	// SubjectDeleteMarkerTTL is how long the markers left by max_age and
	// TTL removals live (0: no markers).
	SubjectDeleteMarkerTTL time.Duration     `json:"subject_delete_marker_ttl,omitempty"`
	Metadata               map[string]string `json:"metadata,omitempty"`
	ConsumerLimits         struct {
		InactiveThreshold time.Duration `json:"inactive_threshold,omitempty"`
		MaxAckPending     int           `json:"max_ack_pending,omitempty"`
	} `json:"consumer_limits"`
}

// StreamState is what a stream holds now.
type StreamState struct {
	Msgs        uint64    `json:"messages"`
	Bytes       uint64    `json:"bytes"`
	FirstSeq    uint64    `json:"first_seq"`
	FirstTime   time.Time `json:"first_ts"`
	LastSeq     uint64    `json:"last_seq"`
	LastTime    time.Time `json:"last_ts"`
	NumDeleted  int       `json:"num_deleted,omitempty"`
	NumSubjects int       `json:"num_subjects,omitempty"`
	Deleted     []uint64  `json:"deleted,omitempty"`
	Lost        *LostData `json:"lost,omitempty"`
	Consumers   int       `json:"consumer_count"`
}

// LostData names messages found damaged in storage.
type LostData struct {
	Msgs  []uint64 `json:"msgs"`
	Bytes uint64   `json:"bytes"`
}

// StreamInfo answers create, update and info requests.
type StreamInfo struct {
	Config  StreamConfig        `json:"config"`
	Created time.Time           `json:"created"`
	State   StreamState         `json:"state"`
	Cluster *ClusterInfo        `json:"cluster,omitempty"`
	Mirror  *StreamSourceInfo   `json:"mirror,omitempty"`
	Sources []*StreamSourceInfo `json:"sources,omitempty"`
	TS      time.Time           `json:"ts"`
}

// ClusterInfo names the server holding the stream (its leader).
type ClusterInfo struct {
	Name   string `json:"name,omitempty"`
	Leader string `json:"leader,omitempty"`
}

// PubAck is the reply to a message stored by a stream.
type PubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Domain    string `json:"domain,omitempty"`
	Val       string `json:"val,omitempty"`   // a counter's total
	Batch     string `json:"batch,omitempty"` // an atomic batch's id and size
	Count     int    `json:"count,omitempty"`
}

// ApiError is the error of a JetStream reply: the HTTP-like code, the
// JetStream error code nats.go matches on, and the text.
type ApiError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code,omitempty"`
	Description string `json:"description,omitempty"`
}

func (e *ApiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

// Errors as nats-server's errors.json defines them (code, err_code, text).
var (
	errBadRequest         = &ApiError{400, 10003, "bad request"}
	errStreamNotFound     = &ApiError{404, 10059, "stream not found"}
	errStreamNameExist    = &ApiError{400, 10058, "stream name already in use with a different configuration"}
	errStreamMismatch     = &ApiError{400, 10056, "stream name in subject does not match request"}
	errSubjectOverlap     = &ApiError{400, 10065, "subjects overlap with an existing stream"}
	errNoMessageFound     = &ApiError{404, 10037, "no message found"}
	errReplicas           = &ApiError{500, 10074, "replicas > 1 not supported in non-clustered mode"}
	errMsgTooBig          = &ApiError{400, 10054, "message size exceeds maximum allowed"}
	errHeaderTooBig       = &ApiError{400, 10097, "header size exceeds maximum allowed of 64k"}
	errExpectedStream     = &ApiError{400, 10060, "expected stream does not match"}
	errSealed             = &ApiError{400, 10109, "invalid operation on sealed stream"}
	errNameSeparators     = &ApiError{400, 10128, "Stream name can not contain path separators"}
	errStreamMsgsExceeded = &ApiError{503, 10077, "maximum messages exceeded"}
	errStreamBytesExceed  = &ApiError{503, 10077, "maximum bytes exceeded"}
	// errStreamMsgsPerSubject is JSStreamStoreFailedF with the store's
	// ErrMaxMsgsPerSubject (discard_new_per_subject).
	errStreamMsgsPerSubject = &ApiError{503, 10077, "maximum messages per subject exceeded"}

	errNotEnabledForAccount = &ApiError{503, 10039, "JetStream not enabled for account"}

	// Resource limits (limits.go).
	errAccountResources      = &ApiError{400, 10002, "resource limits exceeded for account"}
	errInsufficientResources = &ApiError{503, 10023, "insufficient resources"}
	errMemoryResources       = &ApiError{500, 10028, "insufficient memory resources available"}
	errStorageResources      = &ApiError{500, 10047, "insufficient storage resources available"}
	errMaxConsumers          = &ApiError{400, 10026, "maximum consumers limit reached"}
	errMaxStreams            = &ApiError{400, 10027, "maximum number of streams reached"}
	errMaxBytesRequired      = &ApiError{400, 10113, "account requires a stream config to have max bytes set"}
	errMaxStreamBytes        = &ApiError{400, 10122, "stream max bytes exceeds account limit max stream bytes"}
)

func errAckPendingExceeds(limit int) *ApiError {
	return &ApiError{400, 10121, fmt.Sprintf("consumer max ack pending exceeds system limit of %d", limit)}
}

func errInvalidJSON(err error) *ApiError {
	text := err.Error()
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		text += fmt.Sprintf(" at offset %d", syntax.Offset) // as nats-server words it
	}
	return &ApiError{400, 10025, "invalid JSON: " + text}
}
func errInvalidConfig(format string, a ...any) *ApiError {
	return &ApiError{500, 10052, fmt.Sprintf(format, a...)}
}

// errRollupFailed is JSStreamRollupFailedF.
func errRollupFailed(text string) *ApiError { return &ApiError{500, 10111, text} }
func errStreamCreate(err error) *ApiError   { return &ApiError{500, 10049, err.Error()} }
func errStreamUpdate(format string, a ...any) *ApiError {
	return &ApiError{500, 10069, fmt.Sprintf(format, a...)}
}
func errStreamStore(err error) *ApiError  { return &ApiError{503, 10077, err.Error()} }
func errStreamDelete(err error) *ApiError { return &ApiError{500, 10050, err.Error()} }
func errPurgeFailed(err error) *ApiError  { return &ApiError{500, 10110, err.Error()} }
func errMsgDelete(err error) *ApiError    { return &ApiError{500, 10057, err.Error()} }
func errWrongLastSeq(seq uint64) *ApiError {
	return &ApiError{400, 10071, fmt.Sprintf("wrong last sequence: %d", seq)}
}
func errWrongLastMsgID(id string) *ApiError {
	return &ApiError{400, 10070, fmt.Sprintf("wrong last msg ID: %s", id)}
}

// response is the envelope of every API reply: its type and, on failure,
// the error; the payload's own fields are merged in.
func response(typ string, payload any, apiErr *ApiError) []byte {
	m := map[string]any{"type": typ}
	if apiErr != nil {
		m["error"] = apiErr
	} else if payload != nil {
		b, _ := json.Marshal(payload)
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(b, &fields)
		for k, v := range fields {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}
