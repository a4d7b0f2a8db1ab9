## ZMTP 3.1 framing (RFC 23 / RFC 37) for a DEALER talking to the daemon's ROUTER, as
## docs/protocol.md section 8 describes: greeting with the NULL mechanism, READY with Socket-Type,
## message frames (short and long), PING/PONG and ERROR commands. Pure functions over bytes: the
## socket lives in worldbridge_client.gd.

const FLAG_MORE := 0x01
const FLAG_LONG := 0x02
const FLAG_COMMAND := 0x04
const GREETING_SIZE := 64


## The 64-byte greeting: signature, version 3.1, mechanism "NULL", as-server 0, zero filler.
static func greeting() -> PackedByteArray:
	var out := PackedByteArray()
	out.resize(GREETING_SIZE)
	out.fill(0)
	out[0] = 0xff
	out[9] = 0x7f
	out[10] = 3
	out[11] = 1
	var mechanism := "NULL".to_ascii_buffer()
	for i in mechanism.size():
		out[12 + i] = mechanism[i]
	return out


## True for a ZMTP 3.x greeting (any minor version) that offers the NULL mechanism.
static func is_valid_greeting(peer: PackedByteArray) -> bool:
	if peer.size() < GREETING_SIZE or peer[0] != 0xff or peer[9] != 0x7f or peer[10] != 3:
		return false
	return peer.slice(12, 16).get_string_from_ascii() == "NULL" and peer[16] == 0


## One frame: flags, 1-byte size (or 8-byte big-endian size over 255 bytes), body.
static func frame(body: PackedByteArray, more := false, is_command := false) -> PackedByteArray:
	var flags := (FLAG_MORE if more else 0) | (FLAG_COMMAND if is_command else 0)
	var out := PackedByteArray()
	if body.size() > 255:
		out.append(flags | FLAG_LONG)
		out.append_array(big_endian(body.size(), 8))
	else:
		out.append(flags)
		out.append(body.size())
	out.append_array(body)
	return out


## All frames of one message, MORE set on every frame but the last.
static func message(frames: Array) -> PackedByteArray:
	var out := PackedByteArray()
	for i in frames.size():
		out.append_array(frame(frames[i], i < frames.size() - 1))
	return out


## A command frame: name length, name, data.
static func command(name: String, data := PackedByteArray()) -> PackedByteArray:
	var body := PackedByteArray([name.length()])
	body.append_array(name.to_ascii_buffer())
	body.append_array(data)
	return frame(body, false, true)


## READY with one property, Socket-Type (name length, name, 4-byte value length, value).
static func ready(socket_type: String) -> PackedByteArray:
	var data := PackedByteArray([11])
	data.append_array("Socket-Type".to_ascii_buffer())
	data.append_array(big_endian(socket_type.length(), 4))
	data.append_array(socket_type.to_ascii_buffer())
	return command("READY", data)


static func ping(ttl_ds: int, context: PackedByteArray) -> PackedByteArray:
	var data := big_endian(ttl_ds, 2)
	data.append_array(context)
	return command("PING", data)


static func pong(context: PackedByteArray) -> PackedByteArray:
	return command("PONG", context)


static func error(reason: String) -> PackedByteArray:
	var data := PackedByteArray([reason.length()])
	data.append_array(reason.to_ascii_buffer())
	return command("ERROR", data)


## The frame starting at buf[pos]: {} while incomplete, {"error": why} for a frame this client
## refuses (over max_size, or a 64-bit size with the top bit set, which a GDScript int cannot
## hold), else {"flags", "body", "next"} where next is the position after the frame.
static func parse_frame(buf: PackedByteArray, pos: int, max_size: int) -> Dictionary:
	var available := buf.size() - pos
	if available < 2:
		return {}
	var flags: int = buf[pos]
	var header := 9 if flags & FLAG_LONG else 2
	if available < header:
		return {}
	var size: int = buf[pos + 1]
	if flags & FLAG_LONG:
		if buf[pos + 1] >= 0x80:
			return {"error": "frame size over 2^63 bytes"}
		size = 0
		for i in 8:
			size = (size << 8) | buf[pos + 1 + i]
	if size > max_size:
		return {"error": "frame of %d bytes is over the %d-byte limit" % [size, max_size]}
	if available < header + size:
		return {}
	var end := pos + header + size
	return {"flags": flags, "body": buf.slice(pos + header, end), "next": end}


## Name of a command frame's body ("READY", "PING", ...).
static func command_name(body: PackedByteArray) -> String:
	if body.is_empty() or body.size() < 1 + body[0]:
		return ""
	return body.slice(1, 1 + body[0]).get_string_from_ascii()


## What follows the name in a command frame's body.
static func command_data(body: PackedByteArray) -> PackedByteArray:
	if body.is_empty():
		return PackedByteArray()
	return body.slice(1 + body[0])


## Properties of READY command data: {name: value bytes}; {} when malformed.
static func parse_properties(data: PackedByteArray) -> Dictionary:
	var props := {}
	var pos := 0
	while pos < data.size():
		var name_end: int = pos + 1 + data[pos]
		if name_end + 4 > data.size():
			return {}
		var value_size := 0
		for i in 4:
			value_size = (value_size << 8) | data[name_end + i]
		var value_end := name_end + 4 + value_size
		if value_end > data.size():
			return {}
		props[data.slice(pos + 1, name_end).get_string_from_ascii()] = data.slice(
			name_end + 4, value_end
		)
		pos = value_end
	return props


## Big-endian bytes of a non-negative int.
static func big_endian(value: int, count: int) -> PackedByteArray:
	var out := PackedByteArray()
	out.resize(count)
	for i in count:
		out[count - 1 - i] = (value >> (8 * i)) & 0xff
	return out
