<rng model='virtio'>
  <backend model='random'>/dev/urandom</backend>
</rng>