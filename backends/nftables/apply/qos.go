package apply

import (
	"bytes"
	"fmt"

	"github.com/google/nftables/expr"

	"github.com/turnwall/turnwall/backends/nftables"
)

// Base chain priorities turnwall writes: filter (the policy) and mangle (the
// QoS marking chain, before the filter chains of the same hook).
var priorities = map[string]int32{"": 0, "filter": 0, "mangle": -150}

// priorityName names a kernel priority as the model does ("" for filter).
func priorityName(p int32) (string, bool) {
	switch p {
	case 0:
		return "", true
	case -150:
		return "mangle", true
	}
	return "", false
}

// ctDirection is `ct direction original|reply`: ct load direction, cmp of
// one byte (IP_CT_DIR_ORIGINAL 0, IP_CT_DIR_REPLY 1), as nft writes it.
func ctDirection(dir string) ([]expr.Any, error) {
	var b byte
	switch dir {
	case "original":
	case "reply":
		b = 1
	default:
		return nil, fmt.Errorf("unknown ct direction %q", dir)
	}
	return []expr.Any{&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{b}}}, nil
}

func ctDirName(b byte) (string, error) {
	switch b {
	case 0:
		return "original", nil
	case 1:
		return "reply", nil
	}
	return "", fmt.Errorf("matches ct direction %d", b)
}

// dscpWrite is how nft writes `ip dscp set V` and `ip6 dscp set V`: load the
// first two bytes of the network header, keep what is not DSCP, set DSCP,
// write them back (IPv4 with its header checksum at offset 10). The
// register holds the bytes in network order.
func dscpWrite(family int, v uint8) (mask, xor []byte, csum expr.PayloadCsumType, csumOff uint32, err error) {
	switch family {
	case 4:
		// byte 0 version/IHL kept; byte 1 DSCP(6) ECN(2).
		return []byte{0xff, 0x03}, []byte{0x00, v << 2}, expr.CsumTypeInet, 10, nil
	case 6:
		// version(4) traffic class(8) flow label(4 of 20): DSCP is the
		// low nibble of byte 0 and the top two bits of byte 1.
		return []byte{0xf0, 0x3f}, []byte{v >> 2, (v & 3) << 6}, expr.CsumTypeNone, 0, nil
	}
	return nil, nil, 0, 0, fmt.Errorf("dscp set without family 4 or 6")
}

func setDSCP(family int, v uint8) ([]expr.Any, error) {
	if v > 63 {
		return nil, fmt.Errorf("DSCP %d out of range", v)
	}
	mask, xor, csum, off, err := dscpWrite(family, v)
	if err != nil {
		return nil, err
	}
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 2},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: mask, Xor: xor},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 2,
			CsumType: csum, CsumOffset: off},
	}, nil
}

// dscp decodes the three expressions of a DSCP write; the round trip in
// rule() checks every field.
func (d *decoder) dscp(r *nftables.Rule, ex []expr.Any, i *int) error {
	if *i+3 > len(ex) {
		return fmt.Errorf("loads a network header field without matching it")
	}
	load, ok1 := ex[*i].(*expr.Payload)
	bw, ok2 := ex[*i+1].(*expr.Bitwise)
	write, ok3 := ex[*i+2].(*expr.Payload)
	if !ok1 || !ok2 || !ok3 || load.Base != expr.PayloadBaseNetworkHeader || load.Offset != 0 || load.Len != 2 ||
		write.OperationType != expr.PayloadWrite || len(bw.Xor) != 2 || r.Family == 0 {
		return fmt.Errorf("writes a payload turnwall does not write")
	}
	var v uint8
	if r.Family == 4 {
		v = bw.Xor[1] >> 2
	} else {
		v = bw.Xor[0]<<2 | bw.Xor[1]>>6
	}
	mask, xor, _, _, err := dscpWrite(r.Family, v)
	if err != nil || !bytes.Equal(mask, bw.Mask) || !bytes.Equal(xor, bw.Xor) {
		return fmt.Errorf("writes a network header field other than DSCP")
	}
	r.MarkDSCP, r.DSCP = true, v
	*i += 3
	return nil
}
