## MessagePack for the subset the WorldBridge protocol uses (docs/protocol.md, "Encoding rules").
##
## encode(): nil, bool, int (smallest encoding), float (always float64, 0xcb), String/StringName
## (UTF-8 str), PackedByteArray (bin), Array and packed arrays (array), Dictionary (map, written in
## insertion order: GDScript dictionaries keep it, so a literal written in the documented key order
## comes out byte-identical to tests/vectors/).
##
## decode(): every encoding of those types (fixint, uint8..64, int8..64, float32 widened to float,
## float64, fixstr/str8/16/32, bin8/16/32, fixarray/array16/32, fixmap/map16/32). It returns
## [ok, value] so that a decoded nil can be told from a failure.
##
## GDScript's int is a signed 64-bit integer. A uint64 above 9223372036854775807 cannot be one, so
## decode() returns it as the nearest float instead of a silently negative int; the protocol never
## sends such values (its uint fields stay below 2^63). encode() never meets one.

const ARRAY_TYPES := [
	TYPE_ARRAY,
	TYPE_PACKED_INT32_ARRAY,
	TYPE_PACKED_INT64_ARRAY,
	TYPE_PACKED_FLOAT32_ARRAY,
	TYPE_PACKED_FLOAT64_ARRAY,
	TYPE_PACKED_STRING_ARRAY,
]


## Bytes of one value.
static func encode(value: Variant) -> PackedByteArray:
	var out := StreamPeerBuffer.new()
	out.big_endian = true
	_write(out, value)
	return out.data_array


## [true, value] for well-formed bytes holding exactly one value; [false, null] otherwise.
static func decode(data: PackedByteArray) -> Array:
	var reader := Reader.new(data)
	var value: Variant = reader.read(0)
	if reader.failed or reader.buf.get_available_bytes() != 0:
		return [false, null]
	return [true, value]


static func _write(out: StreamPeerBuffer, value: Variant) -> void:
	match typeof(value):
		TYPE_NIL:
			out.put_u8(0xc0)
		TYPE_BOOL:
			out.put_u8(0xc3 if value else 0xc2)
		TYPE_INT:
			_write_int(out, value)
		TYPE_FLOAT:
			out.put_u8(0xcb)
			out.put_double(value)
		TYPE_STRING, TYPE_STRING_NAME:
			var utf8: PackedByteArray = str(value).to_utf8_buffer()
			_write_length(out, utf8.size(), 0xa0, 32, [0xd9, 0xda, 0xdb])
			out.put_data(utf8)
		TYPE_PACKED_BYTE_ARRAY:
			_write_length(out, value.size(), 0, 0, [0xc4, 0xc5, 0xc6])
			out.put_data(value)
		TYPE_DICTIONARY:
			_write_length(out, value.size(), 0x80, 16, [-1, 0xde, 0xdf])
			for key in value:
				_write(out, key)
				_write(out, value[key])
		_:
			if typeof(value) in ARRAY_TYPES:
				_write_length(out, value.size(), 0x90, 16, [-1, 0xdc, 0xdd])
				for item in value:
					_write(out, item)
			else:
				push_error("msgpack: cannot encode a %s" % type_string(typeof(value)))
				out.put_u8(0xc0)


static func _write_int(out: StreamPeerBuffer, v: int) -> void:
	if v >= 0:
		if v < 0x80:
			out.put_u8(v)
		elif v <= 0xff:
			out.put_u8(0xcc)
			out.put_u8(v)
		elif v <= 0xffff:
			out.put_u8(0xcd)
			out.put_u16(v)
		elif v <= 0xffffffff:
			out.put_u8(0xce)
			out.put_u32(v)
		else:
			out.put_u8(0xcf)
			out.put_u64(v)
	elif v >= -32:
		out.put_u8(v & 0xff)  # negative fixint 0xe0..0xff
	elif v >= -0x80:
		out.put_u8(0xd0)
		out.put_8(v)
	elif v >= -0x8000:
		out.put_u8(0xd1)
		out.put_16(v)
	elif v >= -0x80000000:
		out.put_u8(0xd2)
		out.put_32(v)
	else:
		out.put_u8(0xd3)
		out.put_64(v)


## Header of a str/bin/array/map of n items: fix form below fix_limit, then the 8/16/32-bit forms
## named in codes (-1: no 8-bit form, as for arrays and maps).
static func _write_length(
	out: StreamPeerBuffer, n: int, fix_base: int, fix_limit: int, codes: Array
) -> void:
	if n < fix_limit:
		out.put_u8(fix_base | n)
	elif codes[0] >= 0 and n <= 0xff:
		out.put_u8(codes[0])
		out.put_u8(n)
	elif n <= 0xffff:
		out.put_u8(codes[1])
		out.put_u16(n)
	else:
		out.put_u8(codes[2])
		out.put_u32(n)


## A cursor over bytes being decoded; `failed` turns true on truncated or unsupported input.
class Reader:
	const MAX_DEPTH := 32
	const TWO_POW_64 := 18446744073709551616.0

	var buf := StreamPeerBuffer.new()
	var failed := false

	func _init(data: PackedByteArray) -> void:
		buf.big_endian = true
		buf.data_array = data

	func read(depth: int) -> Variant:
		if depth > MAX_DEPTH or not _need(1):
			failed = true
			return null
		var b: int = buf.get_u8()
		var value: Variant = null
		if b <= 0x7f:
			value = b
		elif b >= 0xe0:
			value = b - 0x100
		elif b >= 0xa0 and b <= 0xbf:
			value = _read_str(b & 0x1f)
		elif b >= 0x90 and b <= 0x9f:
			value = _read_array(b & 0x0f, depth)
		elif b >= 0x80 and b <= 0x8f:
			value = _read_map(b & 0x0f, depth)
		else:
			value = _read_tagged(b, depth)
		return value

	func _read_tagged(b: int, depth: int) -> Variant:
		var value: Variant = null
		match b:
			0xc0:
				value = null
			0xc2:
				value = false
			0xc3:
				value = true
			0xc4, 0xc5, 0xc6:
				value = _read_bytes(_read_uint(1 << (b - 0xc4)))
			0xca:
				if _need(4):
					value = buf.get_float()
			0xcb:
				if _need(8):
					value = buf.get_double()
			0xcc, 0xcd, 0xce:
				value = _read_uint(1 << (b - 0xcc))
			0xcf:
				value = _read_uint64()
			0xd0, 0xd1, 0xd2, 0xd3:
				value = _read_int(1 << (b - 0xd0))
			0xd9, 0xda, 0xdb:
				value = _read_str(_read_uint(1 << (b - 0xd9)))
			0xdc, 0xdd:
				value = _read_array(_read_uint(2 << (b - 0xdc)), depth)
			0xde, 0xdf:
				value = _read_map(_read_uint(2 << (b - 0xde)), depth)
			_:
				failed = true  # 0xc1 (never used), ext types, timestamps: not in the protocol
		return value

	func _need(n: int) -> bool:
		if failed or n < 0 or buf.get_available_bytes() < n:
			failed = true
		return not failed

	func _read_uint(size: int) -> int:
		if not _need(size):
			return 0
		var v := 0
		match size:
			1:
				v = buf.get_u8()
			2:
				v = buf.get_u16()
			4:
				v = buf.get_u32()
			_:
				v = buf.get_u64()
		return v

	func _read_uint64() -> Variant:
		var v := _read_uint(8)
		if v < 0:  # above int64 max: wrapped around, so give the nearest float
			return float(v) + TWO_POW_64
		return v

	func _read_int(size: int) -> int:
		if not _need(size):
			return 0
		var v := 0
		match size:
			1:
				v = buf.get_8()
			2:
				v = buf.get_16()
			4:
				v = buf.get_32()
			_:
				v = buf.get_64()
		return v

	func _read_bytes(n: int) -> PackedByteArray:
		if n == 0 or not _need(n):
			return PackedByteArray()
		var got: Array = buf.get_data(n)
		if got[0] != OK:
			failed = true
			return PackedByteArray()
		return got[1]

	func _read_str(n: int) -> String:
		return _read_bytes(n).get_string_from_utf8()

	func _read_array(n: int, depth: int) -> Array:
		var items := []
		for _i in n:
			if failed:
				break
			items.append(read(depth + 1))
		return items

	func _read_map(n: int, depth: int) -> Dictionary:
		var map := {}
		for _i in n:
			if failed:
				break
			var key: Variant = read(depth + 1)
			map[key] = read(depth + 1)
		return map
