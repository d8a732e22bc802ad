package claims

import (
	"fmt"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Seed records the claims of the domains running now, as the hook's reconnect would for each
// (PlanRebuild): the daemon's SIGHUP after an install brings no reconnect. It returns one line per
// claim taken and per problem. With apply false it plans from a snapshot and changes nothing.
func Seed(pol *policy.Policy, statusDir string, now time.Time, apply bool) (taken, problems []string, err error) {
	running, err := ReadRunning(statusDir)
	if err != nil {
		problems = append(problems, err.Error())
	}
	l := ledger.Open(pol.State.Dir)
	l.Now = func() time.Time { return now }
	for _, rd := range running {
		doc, err := xmlxform.Parse(rd.XML)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rd.File, err))
			continue
		}
		h, s := Load(pol, statusDir, policy.NewDomain(doc), rd.Name)
		if s == nil {
			continue
		}
		var p Plan
		if !apply {
			err = l.View(func(tx *ledger.Tx) error {
				p = PlanRebuild(h, s, tx)
				for _, t := range p.Takes {
					taken = append(taken, t.String())
				}
				return nil
			})
		} else {
			err = l.Update(func(tx *ledger.Tx) error {
				p = PlanRebuild(h, s, tx)
				got, _, err := Apply(tx, p)
				for _, c := range got {
					taken = append(taken, Line(c))
				}
				return err
			})
		}
		if err != nil {
			return taken, problems, err
		}
		if len(p.Conflicts) > 0 {
			problems = append(problems, fmt.Sprintf("%s: claims: %s", rd.Name, strings.Join(p.Conflicts, "; ")))
		}
	}
	return taken, problems, nil
}
