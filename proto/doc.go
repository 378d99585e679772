// Package proto holds Switchyard's gRPC APIs between services, as .proto
// files under switchyard/<area>/v1/ with the generated Go code committed
// beside them. `make proto` regenerates it with pinned generators; there are
// no APIs yet because only the frontdoor exists.
package proto
