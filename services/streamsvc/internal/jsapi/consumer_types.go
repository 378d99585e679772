package jsapi

import (
	"fmt"
	"time"
)

// ConsumerConfig is a consumer's configuration, with nats-server's JSON
// names.
type ConsumerConfig struct {
	Durable            string            `json:"durable_name,omitempty"`
	Name               string            `json:"name,omitempty"`
	Description        string            `json:"description,omitempty"`
	DeliverPolicy      string            `json:"deliver_policy"`
	OptStartSeq        uint64            `json:"opt_start_seq,omitempty"`
	OptStartTime       *time.Time        `json:"opt_start_time,omitempty"`
	AckPolicy          string            `json:"ack_policy"`
	AckWait            time.Duration     `json:"ack_wait,omitempty"`
	MaxDeliver         int               `json:"max_deliver,omitempty"`
	BackOff            []time.Duration   `json:"backoff,omitempty"`
	FilterSubject      string            `json:"filter_subject,omitempty"`
	FilterSubjects     []string          `json:"filter_subjects,omitempty"`
	ReplayPolicy       string            `json:"replay_policy"`
	RateLimit          uint64            `json:"rate_limit_bps,omitempty"`
	SampleFrequency    string            `json:"sample_freq,omitempty"`
	MaxWaiting         int               `json:"max_waiting,omitempty"`
	MaxAckPending      int               `json:"max_ack_pending,omitempty"`
	FlowControl        bool              `json:"flow_control,omitempty"`
	Heartbeat          time.Duration     `json:"idle_heartbeat,omitempty"`
	HeadersOnly        bool              `json:"headers_only,omitempty"`
	MaxRequestBatch    int               `json:"max_batch,omitempty"`
	MaxRequestExpires  time.Duration     `json:"max_expires,omitempty"`
	MaxRequestMaxBytes int               `json:"max_bytes,omitempty"`
	DeliverSubject     string            `json:"deliver_subject,omitempty"`
	DeliverGroup       string            `json:"deliver_group,omitempty"`
	InactiveThreshold  time.Duration     `json:"inactive_threshold,omitempty"`
	Replicas           int               `json:"num_replicas"`
	MemoryStorage      bool              `json:"mem_storage,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	PauseUntil         *time.Time        `json:"pause_until,omitempty"`
	PriorityGroups     []string          `json:"priority_groups,omitempty"`
	PriorityPolicy     string            `json:"priority_policy,omitempty"` // "" for none
	PinnedTTL          time.Duration     `json:"priority_timeout,omitempty"`
}

// SequenceInfo is a position in a consumer and its stream.
type SequenceInfo struct {
	Consumer uint64     `json:"consumer_seq"`
	Stream   uint64     `json:"stream_seq"`
	Last     *time.Time `json:"last_active,omitempty"`
}

// ConsumerInfo answers consumer create and info requests.
type ConsumerInfo struct {
	Stream         string               `json:"stream_name"`
	Name           string               `json:"name"`
	Created        time.Time            `json:"created"`
	Config         ConsumerConfig       `json:"config"`
	Delivered      SequenceInfo         `json:"delivered"`
	AckFloor       SequenceInfo         `json:"ack_floor"`
	NumAckPending  int                  `json:"num_ack_pending"`
	NumRedelivered int                  `json:"num_redelivered"`
	NumWaiting     int                  `json:"num_waiting"`
	NumPending     uint64               `json:"num_pending"`
	Cluster        *ClusterInfo         `json:"cluster,omitempty"`
	PushBound      bool                 `json:"push_bound,omitempty"`
	Paused         bool                 `json:"paused,omitempty"`
	PauseRemaining time.Duration        `json:"pause_remaining,omitempty"`
	TS             time.Time            `json:"ts"`
	PriorityGroups []PriorityGroupState `json:"priority_groups,omitempty"`
}

// PriorityGroupState is a priority group's live state in ConsumerInfo
// (nats-server reports the first group only).
type PriorityGroupState struct {
	Group          string    `json:"group"`
	PinnedClientID string    `json:"pinned_client_id,omitempty"`
	PinnedTS       time.Time `json:"pinned_ts"` // the zero time when none is pinned, as nats-server
}

// Consumer errors, as nats-server's errors.json has them.
var (
	errConsumerNotFound       = &ApiError{404, 10014, "consumer not found"}
	errConsumerAlreadyExists  = &ApiError{400, 10148, "consumer already exists"}
	errConsumerDoesNotExist   = &ApiError{400, 10149, "consumer does not exist"}
	errConsumerNameMismatch   = &ApiError{400, 10017, "consumer name in subject does not match durable name in request"}
	errConsumerDeliverWild    = &ApiError{400, 10079, "consumer deliver subject has wildcards"}
	errConsumerPushMaxWaiting = &ApiError{400, 10080, "consumer in push mode can not set max waiting"}
	errConsumerMaxPendingAck  = &ApiError{400, 10082, "consumer requires ack policy for max ack pending"}
	errConsumerSmallHeartbeat = &ApiError{400, 10083, "consumer idle heartbeat needs to be >= 100ms"}
	errConsumerFilterNotSub   = &ApiError{400, 10093, "consumer filter subject is not a valid subset of the interest subjects"}
	errConsumerBadDurable     = &ApiError{400, 10103, "durable name can not contain '.', '*', '>'"}
	errConsumerPathSeparators = &ApiError{400, 10127, "Consumer name can not contain path separators"}
	errConsumerReplicas       = &ApiError{400, 10126, "consumer config replica count exceeds parent stream"}
	errConsumerBothFilters    = &ApiError{400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified"}
	errConsumerOverlapFilters = &ApiError{400, 10138, "consumer subject filters cannot overlap"}
	errConsumerEmptyFilter    = &ApiError{400, 10139, "consumer filter in FilterSubjects cannot be empty"}
	errConsumerMaxDeliverBO   = &ApiError{400, 10116, "max deliver is required to be > length of backoff values"}
	errConsumerAckWait        = &ApiError{400, 10183, "consumer ack wait needs to be positive"}
	errConsumerBackOff        = &ApiError{400, 10184, "consumer backoff needs to be positive"}
	errConsumerMaxWaitingNeg  = &ApiError{400, 10087, "consumer max waiting needs to be positive"}
	errConsumerPullRateLimit  = &ApiError{400, 10086, "consumer in pull mode can not have rate limit set"}
	errConsumerHBRequiresPush = &ApiError{400, 10088, "consumer idle heartbeat requires a push based consumer"}
	errConsumerFCRequiresPush = &ApiError{400, 10089, "consumer flow control requires a push based consumer"}
	errConsumerFCNeedsHB      = &ApiError{400, 10108, "consumer with flow control also needs heartbeats"}
	errPriorityPolicyNoGroup  = &ApiError{400, 10159, "Setting PriorityPolicy requires at least one PriorityGroup to be set"}
	errInvalidPriorityGroup   = &ApiError{400, 10160, "Provided priority group does not exist for this consumer"}
	errEmptyGroupName         = &ApiError{400, 10161, "Group name cannot be an empty string"}
	errInvalidGroupName       = &ApiError{400, 10162, "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"}
	errPushWithPriorityGroup  = &ApiError{400, 10178, "priority groups can not be used with push consumers"}
	errPriorityGroupNoPolicy  = &ApiError{400, 10196, "consumer can not have priority groups when policy is none"}
	errPinnedTTLNoPolicy      = &ApiError{400, 10197, "PinnedTTL cannot be set when PriorityPolicy is none"}
)

func errConsumerPolicy(format string, a ...any) *ApiError {
	return &ApiError{400, 10094, fmt.Sprintf(format, a...)}
}

func errConsumerCreate(format string, a ...any) *ApiError {
	return &ApiError{500, 10012, fmt.Sprintf(format, a...)}
}
