package node

import (
	"fmt"
	"math/rand/v2"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/subject"
)

// mappingTable holds the compiled `mappings {}` of the configuration. It is
// replaced whole on reload, so publishers read it without a lock.
type mappingTable struct {
	rules []mappingRule
}

type mappingRule struct {
	source string
	dests  []weightedTransform // weights are cumulative percentages
}

type weightedTransform struct {
	upTo int // cumulative weight: pick when roll < upTo
	t    *subject.Transform
}

func compileMappings(ms []config.Mapping) (*mappingTable, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	tbl := &mappingTable{}
	for _, m := range ms {
		rule := mappingRule{source: m.Source}
		total := 0
		for _, d := range m.Destinations {
			t, err := subject.NewTransform(m.Source, d.Subject)
			if err != nil {
				return nil, fmt.Errorf("mappings: %w", err)
			}
			total += int(d.Weight)
			rule.dests = append(rule.dests, weightedTransform{upTo: total, t: t})
		}
		if total > 100 {
			return nil, fmt.Errorf("mappings: weights for %q add up to %d%%, more than 100%%", m.Source, total)
		}
		tbl.rules = append(tbl.rules, rule)
	}
	return tbl, nil
}

// apply maps a published subject. With weighted destinations whose weights
// add up to less than 100, the remainder keeps the original subject.
func (m *mappingTable) apply(subj []byte) ([]byte, bool) {
	for i := range m.rules {
		r := &m.rules[i]
		if !subject.Matches(r.source, string(subj)) {
			continue
		}
		wt := &r.dests[0]
		if len(r.dests) > 1 || wt.upTo < 100 {
			roll := rand.IntN(100)
			wt = nil
			for k := range r.dests {
				if roll < r.dests[k].upTo {
					wt = &r.dests[k]
					break
				}
			}
			if wt == nil {
				return subj, false
			}
		}
		out, ok := wt.t.Apply(string(subj))
		return []byte(out), ok
	}
	return subj, false
}
