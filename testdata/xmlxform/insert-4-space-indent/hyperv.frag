<hyperv mode='custom'>
  <relaxed state='on'/>
</hyperv>
