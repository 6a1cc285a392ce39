package readiness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// mediaPeer is the server's end of a test call: an ICE-lite peer on the
// server's media addresses that sends audio (Opus silence frames, 20 ms
// apart) and counts what it receives, so a call measures both directions.
type mediaPeer struct {
	id       string
	pc       *webrtc.PeerConnection
	sent     atomic.Int64
	received atomic.Int64
	done     chan struct{}
	once     sync.Once
}

// opusSilence is one 20 ms Opus frame of silence (RFC 6716, CELT FB, a
// valid packet every decoder accepts).
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// MediaOptions place the server's media peer.
type MediaOptions struct {
	// Addrs are the addresses the media peer offers as host candidates; the
	// relays must be allowed to reach them (their peers). Empty: every
	// address of the machine but loopback, or loopback when Loopback is set.
	Addrs []netip.Addr
	// Ports bound the peer's UDP ports (inclusive); zero: any.
	Ports [2]uint16
	// Duration is how long the peer sends audio; the page sends as long.
	Duration time.Duration
	// Net opens the peer's sockets (InNamespace for a lab host); nil: the
	// process's own network.
	Net transport.Net
}

func newMediaAPI(opt MediaOptions) (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	se.SetLite(true)
	if opt.Net != nil {
		se.SetNet(opt.Net)
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(opt.Addrs) > 0 {
		allowed := map[netip.Addr]bool{}
		loop := false
		for _, a := range opt.Addrs {
			allowed[a.Unmap()] = true
			loop = loop || a.IsLoopback()
		}
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && allowed[a.Unmap()]
		})
		se.SetIncludeLoopbackCandidate(loop)
	}
	if opt.Ports != [2]uint16{} {
		if err := se.SetEphemeralUDPPortRange(opt.Ports[0], opt.Ports[1]); err != nil {
			return nil, err
		}
	}
	se.SetICETimeouts(3*time.Second, 5*time.Second, time.Second)
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m)), nil
}

// answer creates a media peer for an offer and returns its answer, with every
// candidate in it (no trickle). The peer sends audio for d once connected and
// closes itself after d plus a margin.
func answer(ctx context.Context, api *webrtc.API, id, offer string, d time.Duration) (*mediaPeer, string, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	mp := &mediaPeer{id: id, pc: pc, done: make(chan struct{})}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "turnwall")
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	go func() { // RTCP from the browser; read so interceptors run
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			mp.received.Add(1)
		}
	})
	connected := make(chan struct{})
	var connOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			mp.close()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return nil, "", fmt.Errorf("offer: %w", err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		pc.Close()
		return nil, "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		pc.Close()
		return nil, "", ctx.Err()
	case <-time.After(5 * time.Second):
		pc.Close()
		return nil, "", errors.New("gathering candidates timed out")
	}
	// Send once connected; give up if the call never connects.
	go func() {
		defer mp.close()
		select {
		case <-connected:
		case <-mp.done:
			return
		case <-time.After(d + 15*time.Second):
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		end := time.After(d)
		var seq uint16
		var ts uint32
		for {
			select {
			case <-tick.C:
				seq++
				ts += 960
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts}, Payload: opusSilence}
				if err := track.WriteRTP(pkt); err == nil {
					mp.sent.Add(1)
				}
			case <-end:
				// Linger so the browser's last packets and stats arrive.
				select {
				case <-time.After(3 * time.Second):
				case <-mp.done:
				}
				return
			case <-mp.done:
				return
			}
		}
	}()
	return mp, pc.LocalDescription().SDP, nil
}

func (mp *mediaPeer) close() {
	mp.once.Do(func() {
		close(mp.done)
		go mp.pc.Close()
	})
}
