package apply

import (
	"errors"

	"golang.org/x/sys/unix"
)

// CheckPrivileges reports, before anything is read or written, that this
// process cannot use nftables: every nftables netlink request, reads
// included, needs CAP_NET_ADMIN in the network namespace (root has it).
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil // cannot tell; the kernel will say
	}
	if data[0].Effective&(1<<unix.CAP_NET_ADMIN) == 0 {
		return errors.New("nftables needs root or CAP_NET_ADMIN, and this process has neither (run turnwall with sudo)")
	}
	return nil
}
