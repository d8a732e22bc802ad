package policy

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

const (
	added = `# added by "virt-failover drain"; "virt-failover uncordon" removes it`
	set   = `# set by "virt-failover drain"; "virt-failover uncordon" sets it back to true`
)

// Cordon sets [host] accept_incoming = false and changes nothing else, byte for byte; Uncordon
// gives back the file as it was; both are idempotent.
func TestCordonEditsOnlyTheKeyAndUncordonRestores(t *testing.T) {
	for _, tc := range []struct {
		name, in, cordoned string
		// uncordoned is the file after Uncordon of the cordoned one: "" for in itself.
		uncordoned string
	}{{
		name:     "key-added-under-host-keeping-comments-and-order",
		in:       "# the host's policy\n[host] # this host\nenabled = true   # on\non_error = 'pass'\n\n[state]\n# where claims go\ndir = \"/var/lib/x\"\n",
		cordoned: "# the host's policy\n[host] # this host\naccept_incoming = false " + added + "\nenabled = true   # on\non_error = 'pass'\n\n[state]\n# where claims go\ndir = \"/var/lib/x\"\n",
	}, {
		name:     "true-becomes-false-with-a-comment-saying-who",
		in:       "[host]\naccept_incoming = true\nenabled = true\n",
		cordoned: "[host]\naccept_incoming = false " + set + "\nenabled = true\n",
	}, {
		name:     "true-with-the-operators-comment-keeps-it",
		in:       "[host]\naccept_incoming   =   true    # the maintenance switch\n",
		cordoned: "[host]\naccept_incoming   =   false    # the maintenance switch\n",
	}, {
		name:     "no-host-table-appended-at-the-end",
		in:       "# pools\n[pools.fabric]\nnetworks = [\"a\", # first\n  \"b\"]\n",
		cordoned: "# pools\n[pools.fabric]\nnetworks = [\"a\", # first\n  \"b\"]\n\n[host] " + added + "\naccept_incoming = false " + added + "\n",
	}, {
		name:     "empty-file",
		in:       "",
		cordoned: "[host] " + added + "\naccept_incoming = false " + added + "\n",
	}, {
		name:     "host-in-dotted-keys",
		in:       "host.enabled = true\nhost.on_error = \"pass\"\n[state]\ndir = \"/s\"\n",
		cordoned: "host.enabled = true\nhost.on_error = \"pass\"\nhost.accept_incoming = false " + added + "\n[state]\ndir = \"/s\"\n",
	}, {
		name:     "crlf-line-breaks",
		in:       "[host]\r\nenabled = true\r\n",
		cordoned: "[host]\r\naccept_incoming = false " + added + "\r\nenabled = true\r\n",
	}, {
		name:     "crlf-no-host-table",
		in:       "[state]\r\ndir = \"/s\"\r\n",
		cordoned: "[state]\r\ndir = \"/s\"\r\n\r\n[host] " + added + "\r\naccept_incoming = false " + added + "\r\n",
	}, {
		name:     "header-last-without-line-break",
		in:       "[host]",
		cordoned: "[host]\naccept_incoming = false " + added + "\n",
		// The line break before the added line stays: the file ends with one now.
		uncordoned: "[host]\n",
	}, {
		name:       "no-line-break-at-the-end",
		in:         "[state]\ndir = \"/s\"",
		cordoned:   "[state]\ndir = \"/s\"\n\n[host] " + added + "\naccept_incoming = false " + added + "\n",
		uncordoned: "[state]\ndir = \"/s\"\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Cordon("p.toml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(c.Data) != tc.cordoned || !c.Changed {
				t.Fatalf("cordoned (changed %v, %s):\n%q\nwant:\n%q", c.Changed, c.Did, c.Data, tc.cordoned)
			}
			if p, err := Parse("p.toml", c.Data); err != nil || p.Host.AcceptIncoming {
				t.Fatalf("the cordoned file: %v, %+v", err, p)
			}
			again, err := Cordon("p.toml", c.Data)
			if err != nil || again.Changed || string(again.Data) != tc.cordoned {
				t.Errorf("a second cordon changed it (%v): %q", err, again.Data)
			}
			u, err := Uncordon("p.toml", c.Data)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.uncordoned
			if want == "" {
				want = tc.in
			}
			if string(u.Data) != want || !u.Changed {
				t.Errorf("uncordoned (changed %v, %s):\n%q\nwant:\n%q", u.Changed, u.Did, u.Data, want)
			}
			if p, err := Parse("p.toml", u.Data); err != nil || !p.Host.AcceptIncoming {
				t.Fatalf("the uncordoned file: %v, %+v", err, p)
			}
			if again, err := Uncordon("p.toml", u.Data); err != nil || again.Changed || string(again.Data) != want {
				t.Errorf("a second uncordon changed it (%v): %q", err, again.Data)
			}
		})
	}
}

// A host cordoned by hand stays as it is at drain, and uncordon lets it accept again.
func TestUncordonOfAHostCordonedByHand(t *testing.T) {
	in := "[host]\naccept_incoming = false # kernel upgrade\n"
	c, err := Cordon("p.toml", []byte(in))
	if err != nil || c.Changed || string(c.Data) != in || !strings.Contains(c.Did, "already") {
		t.Fatalf("cordon: %v %+v", err, c)
	}
	u, err := Uncordon("p.toml", []byte(in))
	if err != nil || string(u.Data) != "[host]\naccept_incoming = true # kernel upgrade\n" {
		t.Fatalf("uncordon: %v %q", err, u.Data)
	}
}

// A [host] table drain added stays when the operator put another key in it meanwhile: only the
// line drain added goes.
func TestUncordonKeepsATableTheOperatorUsedSince(t *testing.T) {
	in := "[state]\ndir = \"/s\"\n\n[host] " + added + "\naccept_incoming = false " + added + "\nenforce = \"refuse\"\n"
	u, err := Uncordon("p.toml", []byte(in))
	want := "[state]\ndir = \"/s\"\n\n[host] " + added + "\nenforce = \"refuse\"\n"
	if err != nil || string(u.Data) != want {
		t.Fatalf("uncordon: %v\n%q\nwant\n%q", err, u.Data, want)
	}
}

// A file the policy refuses is not edited: the error is the policy's own, with its position; an
// inline [host] table is left to the operator.
func TestCordonRefusesWhatItCannotEdit(t *testing.T) {
	_, err := Cordon("p.toml", []byte("[host]\naccept_incoming = 'no'\n"))
	if err == nil || !strings.Contains(err.Error(), "p.toml:2:") {
		t.Errorf("invalid policy: %v", err)
	}
	_, err = Uncordon("p.toml", []byte("[host\n"))
	if err == nil || !strings.Contains(err.Error(), "invalid TOML") {
		t.Errorf("invalid TOML: %v", err)
	}
	_, err = Cordon("p.toml", []byte("host = { enabled = true }\n"))
	if err == nil || !strings.Contains(err.Error(), "inline table") {
		t.Errorf("inline table: %v", err)
	}
}

// On any valid policy, Cordon gives a valid policy that refuses incoming migrations (or an error
// and nothing), Uncordon of that one a valid policy that accepts them, and a policy that accepted
// them and ends with a line break comes back byte for byte.
func FuzzCordon(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(policyFixtures, "*.toml"))
	files = append(files, policySamplePath)
	for _, file := range files {
		f.Add(readPolicyFile(f, file))
	}
	for _, s := range []string{"", "[host]\naccept_incoming = true\n", "host.enabled = true\n", "[host]\r\n", "[[storage]]\ndevice = '0000:01:00.0'\nlun = '/dev/x'\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		c, err := Cordon("fuzz.toml", data)
		if err != nil {
			return
		}
		if p, err := Parse("fuzz.toml", c.Data); err != nil || p.Host.AcceptIncoming {
			t.Fatalf("cordoned: %v\n%q", err, c.Data)
		}
		u, err := Uncordon("fuzz.toml", c.Data)
		if err != nil {
			t.Fatalf("uncordon of %q: %v", c.Data, err)
		}
		if p, err := Parse("fuzz.toml", u.Data); err != nil || !p.Host.AcceptIncoming {
			t.Fatalf("uncordoned: %v\n%q", err, u.Data)
		}
		if before.Host.AcceptIncoming && (len(data) == 0 || data[len(data)-1] == '\n') && !bytes.Contains(data, []byte("virt-failover")) &&
			!bytes.Equal(u.Data, data) {
			t.Errorf("not restored:\n%q\ncordoned:\n%q\nuncordoned:\n%q", data, c.Data, u.Data)
		}
	})
}
