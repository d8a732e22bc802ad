// Package pair plans the failover pairing of a domain definition: for every assigned NIC without
// a standby it adds a virtio standby <interface> and the <teaming> of both devices; for an
// assigned storage device it adds a virtio-scsi path to the same LUN; and it records what is
// paired under <metadata> in virt-failover's namespace (docs/metadata.md).
//
// [Plan] is a pure function of the parsed definition, the policy and the options: it returns the
// edits as an [xmlxform.Transform], so every byte outside the inserted and edited elements stays
// as it was, and a report of the pairs and warnings. Nothing here reads files, prints or exits.
//
// Planning is idempotent: a definition that is already paired gives no edits, one that is
// partially paired is completed, and planning over the output changes nothing. A pair QEMU fails
// over as it stands is paired, recorded or not: it is left alone unless [Options] Adopt asks for its
// record.
//
// A plan never holds what libvirt or the linter rejects: a domain that is not QEMU/KVM is refused,
// and so is a plan whose output policy/lint finds an error in (the refusal placed in the input).
package pair
