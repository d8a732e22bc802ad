package claims

import (
	"fmt"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/policy"
)

// Seed records the claims of the domains running now, as the hook's reconnect would for each
// (PlanRebuild): the daemon's SIGHUP after an install brings no reconnect. It returns one line per
// claim taken and per problem. The pools and the status files are read once, and every domain is
// planned and applied in one transaction, so each sees the claims of those before it. With apply
// false the transaction is a snapshot that is never written (ledger.View): the same plans, and
// nothing changes.
func Seed(pol *policy.Policy, statusDir string, now time.Time, apply bool) (taken, problems []string, err error) {
	running, err := ReadRunning(statusDir)
	if err != nil {
		problems = append(problems, err.Error())
	}
	type decision struct {
		h *Host
		s *Subject
	}
	var todo []decision
	var host *Host
	for _, rd := range running {
		if !policy.WantsPools(rd.Domain, pol) {
			continue
		}
		if host == nil {
			host = resolve(pol)
		}
		s := host.subject(rd.Domain, rd.Name)
		if s == nil {
			continue
		}
		h := *host
		h.used = usageOf(running, s.UUID)
		todo = append(todo, decision{&h, s})
	}
	if len(todo) == 0 {
		return nil, problems, nil // nothing to claim: no transaction, nothing created
	}
	l := OpenLedger(pol)
	l.Now = func() time.Time { return now }
	do := l.View
	if apply {
		do = l.Update
	}
	err = do(func(tx *ledger.Tx) error {
		for _, d := range todo {
			p := PlanRebuild(d.h, d.s, tx)
			got, _, err := Apply(tx, p)
			if err != nil {
				return err
			}
			for _, c := range got {
				taken = append(taken, Line(c))
			}
			if len(p.Conflicts) > 0 {
				problems = append(problems, fmt.Sprintf("%s: claims: %s", d.s.Name, strings.Join(p.Conflicts, "; ")))
			}
		}
		return nil
	})
	return taken, problems, err
}
