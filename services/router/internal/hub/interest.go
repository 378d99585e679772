package hub

import (
	"math"

	"github.com/switchyard-io/switchyard/pkg/subject"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

// interestKey names one line of a node's interest: nodes send counts per
// (account, subject, queue), never single subscriptions.
type interestKey struct {
	account, subject, queue string
}

// interestEntry is one node's subscription count for one key. It is also the
// value stored in the account's Sublist, so a match yields nodes directly.
type interestEntry struct {
	node  *attachedNode
	key   interestKey
	count int64
}

// accountInterest is the trie of one account plus the figures /interestz
// reports, kept up to date so monitoring never walks the trie.
type accountInterest struct {
	sublist       *subject.Sublist[interestEntry]
	entries       int
	subscriptions int64
}

// InterestGraph is the suite-wide interest: per account, which nodes want
// which subjects. Every method must be called with Hub.mu held for writing
// (reads for matching hold it for reading).
type InterestGraph struct {
	accounts map[string]*accountInterest
}

func newInterestGraph() InterestGraph {
	return InterestGraph{accounts: map[string]*accountInterest{}}
}

// set makes n's count for key equal to count (0 removes the entry) and
// returns the change actually applied, which is what the other nodes must
// add to stay in step.
func (g *InterestGraph) set(n *attachedNode, key interestKey, count int64) int64 {
	if count < 0 {
		count = 0
	}
	e := n.interest[key]
	var old int64
	if e != nil {
		old = e.count
	}
	if old == count {
		return 0
	}
	acc := g.accounts[key.account]
	switch {
	case e == nil: // new entry
		if acc == nil {
			acc = &accountInterest{sublist: subject.NewSublist[interestEntry]()}
			g.accounts[key.account] = acc
		}
		e = &interestEntry{node: n, key: key}
		n.interest[key] = e
		acc.sublist.Insert(key.subject, key.queue, e)
		acc.entries++
	case count == 0: // last subscription gone
		delete(n.interest, key)
		acc.sublist.Remove(key.subject, key.queue, e)
		acc.entries--
	}
	e.count = count
	acc.subscriptions += count - old
	n.subscriptions += count - old
	if acc.entries == 0 {
		// Accounts come and go with their clients; an empty one would leak.
		delete(g.accounts, key.account)
	}
	return count - old
}

// replace applies a snapshot: afterwards n's interest is exactly entries.
// It returns the changes the other nodes need.
func (g *InterestGraph) replace(n *attachedNode, entries []*routerv1.InterestEntry, valid func(*routerv1.InterestEntry) bool) []*routerv1.InterestEntry {
	want := make(map[interestKey]int64, len(entries))
	for _, e := range entries {
		if !valid(e) {
			continue
		}
		want[interestKey{e.Account, e.Subject, e.Queue}] += int64(e.Delta)
	}
	var changes []*routerv1.InterestEntry
	for key := range n.interest {
		if _, keep := want[key]; !keep {
			changes = appendChange(changes, n, key, g.set(n, key, 0))
		}
	}
	for key, count := range want {
		changes = appendChange(changes, n, key, g.set(n, key, count))
	}
	return changes
}

// add applies one delta and returns the change for the other nodes.
func (g *InterestGraph) add(n *attachedNode, e *routerv1.InterestEntry, changes []*routerv1.InterestEntry) []*routerv1.InterestEntry {
	key := interestKey{e.Account, e.Subject, e.Queue}
	var old int64
	if cur := n.interest[key]; cur != nil {
		old = cur.count
	}
	return appendChange(changes, n, key, g.set(n, key, old+int64(e.Delta)))
}

// removeAll drops everything n wanted (detach) and returns the negative
// deltas that cancel it at the other nodes.
func (g *InterestGraph) removeAll(n *attachedNode) []*routerv1.InterestEntry {
	var changes []*routerv1.InterestEntry
	for key := range n.interest {
		changes = appendChange(changes, n, key, g.set(n, key, 0))
	}
	return changes
}

// entriesOf lists n's interest as counts, for another node's snapshot.
func entriesOf(n *attachedNode, out []*routerv1.InterestEntry) []*routerv1.InterestEntry {
	for key, e := range n.interest {
		out = appendChange(out, n, key, e.count)
	}
	return out
}

func appendChange(out []*routerv1.InterestEntry, n *attachedNode, key interestKey, delta int64) []*routerv1.InterestEntry {
	for delta != 0 {
		// The wire carries int32; a larger change (many duplicate snapshot
		// lines) is split rather than wrapped.
		d := max(min(delta, math.MaxInt32), math.MinInt32)
		out = append(out, &routerv1.InterestEntry{
			Account: key.account, Subject: key.subject, Queue: key.queue,
			Delta: int32(d), NodeId: n.id,
		})
		delta -= d
	}
	return out
}

// AccountStats is the size of one account's interest.
type AccountStats struct {
	Account       string `json:"account"`
	Entries       int    `json:"entries"`
	Subscriptions int64  `json:"subscriptions"`
}

func (g *InterestGraph) stats() []AccountStats {
	out := make([]AccountStats, 0, len(g.accounts))
	for name, acc := range g.accounts {
		out = append(out, AccountStats{Account: name, Entries: acc.entries, Subscriptions: acc.subscriptions})
	}
	return out
}
