package virttest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
)

const dev = `<interface type='network'>
      <source network='lan'/>
      <alias name='ua-vf1'/>
    </interface>`

const def = `<domain type='qemu'>
  <name>vm1</name>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <!-- kept -->
    ` + dev + `
    <serial type='pty'><alias name='serial0'/></serial>
  </devices>
</domain>
`

// A detach cuts the device and its line out; an attach puts it back as the last device; the rest
// of the definition stays byte for byte.
func TestRemoveAndInsertDeviceKeepTheRest(t *testing.T) {
	out, err := removeDevice([]byte(def), "ua-vf1")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(def, "    "+dev+"\n", "", 1)
	if string(out) != want {
		t.Errorf("removeDevice:\n%s\nwant:\n%s", out, want)
	}
	if same, _ := removeDevice(out, "ua-vf1"); string(same) != want {
		t.Error("removing a device that is not there changed the definition")
	}
	back, err := insertDevice(out, []byte("\n"+dev+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want2 := strings.Replace(want, "  </devices>", "    "+dev+"\n  </devices>", 1)
	if string(back) != want2 {
		t.Errorf("insertDevice:\n%s\nwant:\n%s", back, want2)
	}
	if has, _ := virt.HasDevice(back, "ua-vf1"); !has {
		t.Error("the inserted device is not found by its alias")
	}
}

// Scripts are taken one call at a time, in order, per operation, domain and target; the calls are
// logged.
func TestScriptsAreTakenInOrder(t *testing.T) {
	cl := New(t)
	h := cl.Host("a")
	if err := h.Add([]byte(def), true); err != nil {
		t.Fatal(err)
	}
	if err := h.Add([]byte(def), false); err == nil {
		t.Error("a second running vm1 was accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := virt.Dial(ctx, h.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.Script(OpDetach, "vm1", "ua-vf1",
		Outcome{Err: &virt.Error{Code: 9, Message: "operation failed: first"}},
		Outcome{Refuse: true})
	h.Script(OpDetach, "vm1", "serial0", Outcome{Err: &virt.Error{Code: 9, Message: "operation failed: other target"}})
	var got []string
	for range 3 {
		err := c.Detach(ctx, "vm1", "ua-vf1", virt.Live, 5*time.Second)
		switch {
		case err == nil:
			got = append(got, "removed")
		case errors.Is(err, virt.ErrRemovalFailed):
			got = append(got, "refused")
		case strings.Contains(err.Error(), "first"):
			got = append(got, "failed")
		default:
			t.Fatal(err)
		}
	}
	if want := []string{"failed", "refused", "removed"}; !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q", got, want)
	}
	if want := []string{"detach vm1 ua-vf1 live", "detach vm1 ua-vf1 live", "detach vm1 ua-vf1 live"}; !slices.Equal(h.Calls(), want) {
		t.Errorf("calls %q, want %q", h.Calls(), want)
	}
	if has, _ := virt.HasDevice(h.InactiveXML("vm1"), "ua-vf1"); !has {
		t.Error("live detaches changed the persistent definition")
	}
}

func TestAddRefusesWhatItCannotModel(t *testing.T) {
	h := New(t).Host("a")
	for _, bad := range []string{"<domain><devices/></domain>", "<domain><name>x</name><uuid>zz</uuid></domain>", "<domain"} {
		if err := h.Add([]byte(bad), false); err == nil {
			t.Errorf("Add(%q) accepted", bad)
		}
	}
	if _, ok := h.State("x"); ok {
		t.Error("a refused domain is known")
	}
}

// Metadata set through the API shows in the definitions as libvirt shows it: in its namespace
// under its key, descendants without a namespace put into it; a definition's own metadata is
// readable through the API; removing the last element removes <metadata>.
func TestMetadataShowsInTheDefinitions(t *testing.T) {
	cl := New(t)
	h := cl.Host("a")
	withMeta := strings.Replace(def, "  <name>vm1</name>\n", "  <name>vm1</name>\n  <metadata>\n    <x:own xmlns:x='urn:x'><x:a/></x:own>\n  </metadata>\n", 1)
	if err := h.Add([]byte(withMeta), true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := virt.Dial(ctx, h.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if el, found, err := c.Metadata(ctx, "vm1", "urn:x", virt.Config); err != nil || !found || !strings.Contains(string(el), "own") {
		t.Fatalf("the definition's own metadata: %q %v %v", el, found, err)
	}
	if err := c.SetMetadata(ctx, "vm1", "urn:y", "y", []byte("<rec a='1'><dev/></rec>"), virt.Live|virt.Config); err != nil {
		t.Fatal(err)
	}
	for _, x := range [][]byte{h.LiveXML("vm1"), h.InactiveXML("vm1")} {
		s := string(x)
		if !strings.Contains(s, `<y:rec xmlns:y="urn:y" a="1"><y:dev/></y:rec>`) || !strings.Contains(s, "<x:own") || strings.Count(s, "<metadata>") != 1 {
			t.Errorf("definition:\n%s", s)
		}
	}
	for _, uri := range []string{"urn:x", "urn:y"} {
		if err := c.SetMetadata(ctx, "vm1", uri, "", nil, virt.Live); err != nil {
			t.Fatal(err)
		}
	}
	if s := string(h.LiveXML("vm1")); strings.Contains(s, "metadata") {
		t.Errorf("no metadata left, but the definition has:\n%s", s)
	}
}
