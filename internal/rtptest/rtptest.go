// Package rtptest holds test helpers for RTP media: a reader for the
// classic pcap capture format that extracts UDP datagrams, enough to replay
// the RFC 4733 captures shipped with sipp (Debian package sip-tester).
package rtptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
)

// SippPoundPcap is sipp's capture of one RFC 4733 '#' event.
const SippPoundPcap = "/usr/share/sip-tester/dtmf_2833_pound.pcap"

// UDPPacket is one UDP datagram of a capture.
type UDPPacket struct {
	Time             time.Time
	SrcPort, DstPort uint16
	Payload          []byte
}

// Link types of the pcap global header that ReadPcap understands.
const (
	linkEthernet = 1
	linkRaw      = 101
	linkLinuxSLL = 113
)

// ReadPcapFile reads the UDP-over-IPv4 datagrams of a pcap file. It fails
// with a message naming the Debian package when the file is missing.
func ReadPcapFile(path string) ([]UDPPacket, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pcap (install the sip-tester package, as scripts/test.sh does): %w", err)
	}
	return ReadPcap(b)
}

// ReadPcap parses a classic pcap capture (either byte order, micro- or
// nanosecond timestamps) and returns its UDP-over-IPv4 datagrams; other
// packets are skipped.
func ReadPcap(b []byte) ([]UDPPacket, error) {
	if len(b) < 24 {
		return nil, errors.New("pcap: short global header")
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, errors.New("pcap: bad magic")
	}
	link := bo.Uint32(b[20:24])
	var out []UDPPacket
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			return nil, errors.New("pcap: truncated record header")
		}
		sec, frac := int64(bo.Uint32(b[off:])), int64(bo.Uint32(b[off+4:]))
		incl := int(bo.Uint32(b[off+8:]))
		off += 16
		if incl < 0 || off+incl > len(b) {
			return nil, errors.New("pcap: truncated record")
		}
		rec := b[off : off+incl]
		off += incl
		if !nano {
			frac *= 1000
		}
		var ip []byte
		switch link {
		case linkEthernet:
			if len(rec) < 14 || binary.BigEndian.Uint16(rec[12:14]) != 0x0800 {
				continue
			}
			ip = rec[14:]
		case linkLinuxSLL:
			if len(rec) < 16 || binary.BigEndian.Uint16(rec[14:16]) != 0x0800 {
				continue
			}
			ip = rec[16:]
		case linkRaw:
			ip = rec
		default:
			return nil, fmt.Errorf("pcap: link type %d not supported", link)
		}
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 {
			continue
		}
		ihl := int(ip[0]&0x0F) * 4
		if len(ip) < ihl+8 {
			continue
		}
		udp := ip[ihl:]
		ulen := int(binary.BigEndian.Uint16(udp[4:6]))
		if ulen < 8 || ulen > len(udp) {
			continue
		}
		out = append(out, UDPPacket{
			Time:    time.Unix(sec, frac),
			SrcPort: binary.BigEndian.Uint16(udp[0:2]),
			DstPort: binary.BigEndian.Uint16(udp[2:4]),
			Payload: append([]byte(nil), udp[8:ulen]...),
		})
	}
	return out, nil
}
