package xmlxform_test

import (
	"fmt"
	"log"

	"github.com/virt-failover/virt-failover/xmlxform"
)

func Example() {
	src := []byte(`<domain type='kvm'>
  <devices>
    <!-- standby -->
    <interface type='bridge'>
      <teaming type='persistent'/>
      <alias name='ua-net0'/>
    </interface>
    <interface type='hostdev'>
      <teaming type='transient' persistent='ua-net9'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
`)
	d, err := xmlxform.Parse(src)
	if err != nil {
		log.Fatal(err)
	}
	teaming := d.Find("/domain/devices/interface[2]/teaming")
	v, _ := teaming.Attr("persistent")
	fmt.Printf("%s: %s persistent=%s\n", d.Pos(teaming.Start.Start), teaming.Path(), v)

	t := xmlxform.NewTransform(d)
	t.SetAttr(teaming, "persistent", "ua-net0")
	t.Remove(d.Find("/domain/devices/memballoon"))
	devices := d.Root.Child("devices")
	if err := t.InsertChild(devices, nil, "<rng model='virtio'>\n  <backend model='random'>/dev/urandom</backend>\n</rng>"); err != nil {
		log.Fatal(err)
	}
	out, err := t.Bytes()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output:
	// 9:7: /domain/devices/interface[2]/teaming persistent=ua-net9
	// <domain type='kvm'>
	//   <devices>
	//     <!-- standby -->
	//     <interface type='bridge'>
	//       <teaming type='persistent'/>
	//       <alias name='ua-net0'/>
	//     </interface>
	//     <interface type='hostdev'>
	//       <teaming type='transient' persistent='ua-net0'/>
	//     </interface>
	//     <rng model='virtio'>
	//       <backend model='random'>/dev/urandom</backend>
	//     </rng>
	//   </devices>
	// </domain>
}
