module github.com/virt-failover/virt-failover

go 1.25.0

toolchain go1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/beevik/etree v1.8.1 // indirect
	github.com/digitalocean/go-libvirt v0.0.0-20261013170128-efbbdf578ac8 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	github.com/urfave/cli/v3 v3.14.0 // indirect
	golang.org/x/crypto v0.48.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
	libvirt.org/go/libvirtxml v1.12008.0 // indirect
)
