package virttest

import (
	"encoding/binary"
	"errors"
	"math"
)

// The parts of libvirt's RPC protocol the fake daemon speaks (libvirt's src/rpc/virnetprotocol.x,
// src/remote/remote_protocol.x and qemu_protocol.x; the numbers are stable forever).
const (
	remoteProgram = 0x20008086
	qemuProgram   = 0x20008087

	typeReply   = 1
	typeMessage = 2

	statusOK    = 0
	statusError = 1

	procConnectOpen                       = 1
	procConnectClose                      = 2
	procDomainGetXMLDesc                  = 14
	procDomainLookupByName                = 23
	procAuthList                          = 66
	procDomainIsPersistent                = 151
	procConnectGetLibVersion              = 157
	procDomainAttachDeviceFlags           = 160
	procDomainAbortJob                    = 164
	procDomainGetState                    = 212
	procDomainSetMetadata                 = 264
	procDomainGetMetadata                 = 265
	procConnectListAllDomains             = 273
	procDomainGetJobStats                 = 298
	procDomainMigratePerform3Params       = 305
	procConnectDomainEventCallbackRegAny  = 316
	procConnectDomainEventCallbackDereg   = 317
	procDomainEventCallbackLifecycle      = 318
	procDomainEventCallbackDeviceRemoved  = 333
	procDomainInterfaceAddresses          = 353
	procDomainEventCallbackDeviceAdded    = 354
	procDomainEventCallbackMigrationIter  = 359
	procDomainEventCallbackDeviceRemFail  = 367
	procDomainEventCallbackMetadataChange = 379
	procDomainDetachDeviceAlias           = 392
	qemuProcDomainMonitorEventRegister    = 4
	qemuProcDomainMonitorEventDeregister  = 5
	qemuProcDomainMonitorEvent            = 6
	eventIDLifecycle                      = 0
	eventIDDeviceRemoved                  = 15
	eventIDDeviceAdded                    = 19
	eventIDMigrationIteration             = 20
	eventIDDeviceRemovalFailed            = 22
	eventIDMetadataChange                 = 23
	metadataElement                       = 2 // VIR_DOMAIN_METADATA_ELEMENT
	typedParamInt, typedParamUint         = 1, 2
	typedParamLlong, typedParamUllong     = 3, 4
	typedParamDouble, typedParamBoolean   = 5, 6
	typedParamString                      = 7
	migrateFlagPersistDest                = 8
	migrateFlagUndefineSource             = 16
	jobStatsCompleted                     = 1
	jobStatsKeepCompleted                 = 2
	domainXMLInactive                     = 2
	stateRunning, statePaused             = 1, 3
	stateShutoff                          = 5
	listActive                            = 1 // virConnectListAllDomains's flag
	shutoffMigrated                       = 5
	lifecycleDefined, lifecycleUndefined  = 0, 1
	lifecycleStarted, lifecycleResumed    = 2, 4
	lifecycleStopped                      = 5
	detailMigrated, detailStoppedMigrated = 1, 3
	jobUnbounded, jobCompleted            = 2, 3
)

// libvirt's error codes the fake gives (virErrorNumber).
const (
	errInternal            = 1
	errOperationFailed     = 9
	errInvalidArg          = 8
	errNoDomain            = 42
	errOperationInvalid    = 55
	errArgumentUnsupported = 74
	errOperationAborted    = 78
	errNoDomainMetadata    = 80
	errSystem              = 38
)

var errShort = errors.New("xdr: short message")

// dec reads XDR; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = errShort
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *dec) i32() int32 { return int32(d.u32()) }

func (d *dec) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *dec) opaque() []byte {
	n := int(d.u32())
	p := d.take(n)
	d.take((4 - n%4) % 4)
	return p
}

func (d *dec) str() string { return string(d.opaque()) }

// optStr reads a remote_string (a pointer: present or not).
func (d *dec) optStr() (string, bool) {
	if d.u32() == 0 {
		return "", false
	}
	return d.str(), true
}

type wireDomain struct {
	name string
	uuid [16]byte
	id   int32
}

func (d *dec) domain() wireDomain {
	var w wireDomain
	w.name = d.str()
	copy(w.uuid[:], d.take(16))
	w.id = d.i32()
	return w
}

func (d *dec) optDomain() (wireDomain, bool) {
	if d.u32() == 0 {
		return wireDomain{}, false
	}
	return d.domain(), true
}

// typedParams reads a virTypedParameter array into a map of Go values.
func (d *dec) typedParams() map[string]any {
	n := int(d.u32())
	m := map[string]any{}
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str()
		switch d.u32() {
		case typedParamInt, typedParamBoolean:
			m[name] = d.i32()
		case typedParamUint:
			m[name] = d.u32()
		case typedParamLlong:
			m[name] = int64(d.u64())
		case typedParamUllong:
			m[name] = d.u64()
		case typedParamDouble:
			m[name] = math.Float64frombits(d.u64())
		case typedParamString:
			m[name] = d.str()
		default:
			d.err = errors.New("xdr: unknown typed parameter type")
		}
	}
	return m
}

// enc writes XDR.
type enc struct{ b []byte }

func (e *enc) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) i32(v int32)  { e.u32(uint32(v)) }
func (e *enc) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *enc) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
	for i := len(s); i%4 != 0; i++ {
		e.b = append(e.b, 0)
	}
}

func (e *enc) optStr(s string, ok bool) {
	if !ok {
		e.u32(0)
		return
	}
	e.u32(1)
	e.str(s)
}

func (e *enc) domain(w wireDomain) {
	e.str(w.name)
	e.b = append(e.b, w.uuid[:]...)
	e.i32(w.id)
}

// typedParam is one virTypedParameter to send: an unsigned long long, or a string.
type typedParam struct {
	name string
	u    uint64
	s    string
	isS  bool
}

func (e *enc) typedParams(ps []typedParam) {
	e.u32(uint32(len(ps)))
	for _, p := range ps {
		e.str(p.name)
		if p.isS {
			e.u32(typedParamString)
			e.str(p.s)
			continue
		}
		e.u32(typedParamUllong)
		e.u64(p.u)
	}
}

// errorPayload is a remote_error: code, domain, message, level, and the unused rest.
func errorPayload(code int, msg string) []byte {
	var e enc
	e.i32(int32(code))
	e.i32(10) // VIR_FROM_QEMU
	e.optStr(msg, true)
	e.i32(2) // VIR_ERR_ERROR
	e.u32(0) // dom
	e.u32(0) // str1
	e.u32(0) // str2
	e.u32(0) // str3
	e.i32(0) // int1
	e.i32(0) // int2
	e.u32(0) // net
	return e.b
}
