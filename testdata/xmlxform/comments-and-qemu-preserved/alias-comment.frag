<redirdev bus='usb' type='spicevmc'>
  <!-- USB redirection -->
</redirdev>