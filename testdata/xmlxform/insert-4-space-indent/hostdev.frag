<interface type='hostdev' managed='yes'>
  <mac address='52:54:00:19:d4:7a'/>
  <source>
    <address type='pci' domain='0x0000' bus='0x5e' slot='0x01' function='0x6'/>
  </source>
  <teaming type='transient' persistent='ua-net1'/>
</interface>
