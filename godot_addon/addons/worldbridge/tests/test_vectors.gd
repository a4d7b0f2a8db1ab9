extends SceneTree
## Headless self-test of the GDScript msgpack, message builders and ZMTP framing against the
## byte vectors made by the Python implementation (tests/vectors/ of the WorldBridge repository,
## copied into vectors/ beside this file; tests/test_godot_addon.py keeps the copies identical).
##
##     godot --headless --path godot_addon -s res://addons/worldbridge/tests/test_vectors.gd
##
## It also checks how guidance_capture.gd turns readback images into guidance buffers.
## Prints a line for each failed check, then "N passed, M failed"; exits 1 when a check failed.

const GuidanceCapture := preload("../guidance_capture.gd")
const Msgpack := preload("../msgpack.gd")
const Protocol := preload("../protocol.gd")
const Zmtp := preload("../zmtp.gd")

const MESSAGE_VECTORS := [
	"hello.msgpack",
	"hello_token.msgpack",
	"hello_prompt.msgpack",
	"input.msgpack",
	"input_pose.msgpack",
	"input_image.msgpack",
	"input_guidance.msgpack",
	"record_start.msgpack",
	"record_stop.msgpack",
	"credit.msgpack",
	"reset.msgpack",
	"reset_image.msgpack",
	"reset_prompt.msgpack",
	"ping.msgpack",
	"bye.msgpack",
	"welcome.msgpack",
	"welcome_guidance.msgpack",
	"frame.msgpack",
	"reset_ok.msgpack",
	"record_ok.msgpack",
	"record_done.msgpack",
	"pong.msgpack",
	"bye_reply.msgpack",
	"error.msgpack",
	"error_record.msgpack",
	"error_prompt.msgpack",
	"error_guidance.msgpack",
]
## hello_prompt's prompt (1.2): non-ASCII, 64 bytes of UTF-8 (a str8).
const PROMPT := "A sunlit café terrace in Lyon, €3 espresso, a dog asleep 🐕"

var _passed := 0
var _failed := 0
var _dir := ""


func _initialize() -> void:
	_dir = get_script().resource_path.get_base_dir().path_join("vectors")
	_test_builders()
	_test_message_round_trips()
	_test_decoded_fields()
	_test_values()
	_test_guidance()
	_test_zmtp_builders()
	_test_zmtp_parsing()
	print("%d passed, %d failed" % [_passed, _failed])
	quit(1 if _failed > 0 else 0)


func _check(label: String, ok: bool) -> void:
	if ok:
		_passed += 1
	else:
		_failed += 1
		print("FAIL ", label)


func _vector(file_name: String) -> PackedByteArray:
	var path := _dir.path_join(file_name)
	if not FileAccess.file_exists(path):
		_check("vector file %s exists" % file_name, false)
		return PackedByteArray()
	return FileAccess.get_file_as_bytes(path)


func _expect_bytes(label: String, got: PackedByteArray, file_name: String) -> void:
	var want := _vector(file_name)
	var ok := got == want
	if not ok:
		print("  want ", want.hex_encode(), "\n  got  ", got.hex_encode())
	_check(label, ok)


func _decode(file_name: String) -> Variant:
	var result: Array = Msgpack.decode(_vector(file_name))
	_check("decode %s" % file_name, result[0])
	return result[1]


## Client messages built by protocol.gd equal the Python-made bytes.
func _test_builders() -> void:
	var sent: Dictionary = _decode("input_pose.msgpack")
	var pose: Dictionary = Protocol.pose_map(sent["pose"]["p"], sent["pose"]["q"])
	var hello: Dictionary = Protocol.hello(
		"unity/0.1.0", "unity", 128, 128, "rgb8", {"row_order": "bottom_up", "credits": 2}
	)
	_expect_bytes("hello", Msgpack.encode(hello), "hello.msgpack")
	var extra := {
		"credits": 16, "capabilities": ["pose"], "token": "s3cret", "jpeg_quality": 70, "seed": -5
	}
	var hello_token: Dictionary = Protocol.hello("godot/0.1.0", "godot", 320, 240, "jpeg", extra)
	_expect_bytes("hello with token", Msgpack.encode(hello_token), "hello_token.msgpack")
	var prompt_extra := {
		"row_order": "bottom_up", "credits": 2, "capabilities": ["pose"], "prompt": PROMPT
	}
	var hello_prompt: Dictionary = Protocol.hello(
		"unity/0.1.0", "unity", 256, 256, "rgb8", prompt_extra
	)
	_expect_bytes("hello with prompt", Msgpack.encode(hello_prompt), "hello_prompt.msgpack")
	var input: Dictionary = Protocol.input(7, 12.25, Vector2(0.0, 1.0), Vector2(-2.5, 0.75), 1)
	_expect_bytes("input", Msgpack.encode(input), "input.msgpack")
	var input_pose: Dictionary = Protocol.input(
		4294967296, 1000.0, Vector2.ZERO, Vector2.ZERO, 0, pose, 60
	)
	_expect_bytes("input with pose", Msgpack.encode(input_pose), "input_pose.msgpack")
	_expect_bytes("credit", Msgpack.encode(Protocol.credit(3)), "credit.msgpack")
	_expect_bytes("reset", Msgpack.encode(Protocol.reset(42, pose)), "reset.msgpack")
	var image: Dictionary = Protocol.image_spec(4, 2, "rgb8")
	var reset_image: Dictionary = Protocol.reset(1, null, image)
	_expect_bytes("reset with image", Msgpack.encode(reset_image), "reset_image.msgpack")
	_expect_bytes("reset image pixels", _ramp(24), "reset_image.payload.bin")
	var reset_prompt: Dictionary = Protocol.reset(3, pose, null, "a snowy pine forest at dusk")
	_expect_bytes("reset with prompt", Msgpack.encode(reset_prompt), "reset_prompt.msgpack")
	var frame_spec: Dictionary = Protocol.image_spec(4, 2, "rgb8")
	var input_image: Dictionary = Protocol.input(
		8, 12.5, Vector2(0.0, 1.0), Vector2(1.0, 0.0), 0, pose, 60, frame_spec
	)
	_expect_bytes("input with image", Msgpack.encode(input_image), "input_image.msgpack")
	_expect_bytes("input image pixels", _ramp(24), "input_image.payload.bin")
	var input_guidance: Dictionary = Protocol.input(
		9, 12.75, Vector2(0.0, 1.0), Vector2.ZERO, 0, pose, 60, null, _guidance_map()
	)
	_expect_bytes("input with guidance", Msgpack.encode(input_guidance), "input_guidance.msgpack")
	var record_start: Dictionary = Protocol.record_start("level_1")
	_expect_bytes("record_start", Msgpack.encode(record_start), "record_start.msgpack")
	_expect_bytes("record_stop", Msgpack.encode(Protocol.record_stop()), "record_stop.msgpack")
	_expect_bytes("ping", Msgpack.encode(Protocol.ping(0.5)), "ping.msgpack")
	_expect_bytes("bye", Msgpack.encode(Protocol.bye()), "bye.msgpack")


## Every message decodes to a map with a "type" and encodes back to the same bytes (maps keep
## their order, ints stay ints, floats stay float64).
func _test_message_round_trips() -> void:
	for file_name in MESSAGE_VECTORS:
		var msg: Variant = _decode(file_name)
		_check("%s is a map with a type" % file_name, msg is Dictionary and msg.has("type"))
		_expect_bytes("%s round trip" % file_name, Msgpack.encode(msg), file_name)


func _test_decoded_fields() -> void:
	var welcome: Dictionary = _decode("welcome.msgpack")
	_check("welcome major", _same(welcome.get("major"), 1))
	_check("welcome minor", _same(welcome.get("minor"), Protocol.MINOR))
	_check("welcome world", _same(welcome.get("world"), "lingbot-fast"))
	_check("welcome fov_deg", _same(welcome.get("fov_deg"), 60.0))
	var capabilities: Variant = welcome.get("capabilities")
	var want_capabilities := ["pose", "start_image", "prompt", "jpeg", "record"]
	_check("welcome capabilities", _same(capabilities, want_capabilities))
	var limits: Dictionary = welcome.get("limits", {})
	_check("welcome max_message_bytes", _same(limits.get("max_message_bytes"), 4194304))
	_check("welcome idle_timeout_s", _same(limits.get("idle_timeout_s"), 60.0))
	var frame: Dictionary = _decode("frame.msgpack")
	_check("frame input_seq", _same(frame.get("input_seq"), 7))
	_check("frame input_t", _same(frame.get("input_t"), 12.25))
	_check("frame size", _same([frame.get("width"), frame.get("height")], [4, 2]))
	_check("frame pose p", _same(frame.get("pose", {}).get("p"), [1.5, 0.5, -2.0]))
	_check("frame timings", _same(frame.get("timings", {}).get("step_ms"), 3.25))
	_expect_bytes("frame pixels", _ramp(24), "frame.payload.bin")
	var error: Dictionary = _decode("error.msgpack")
	_check("error code", _same(error.get("code"), 422))
	_check("error name", _same(error.get("name"), "bad_field"))
	_check("error ref", _same(error.get("ref"), "input"))
	var pong: Dictionary = _decode("pong.msgpack")
	_check("pong server_time", _same(pong.get("server_time"), 1764000000.25))
	var record_ok: Dictionary = _decode("record_ok.msgpack")
	_check("record_ok name", _same(record_ok.get("name"), "level_1"))
	_check("record_ok size", _same([record_ok.get("width"), record_ok.get("height")], [128, 128]))
	_check("record_ok max_bytes", _same(record_ok.get("max_bytes"), 4294967296))
	var record_done: Dictionary = _decode("record_done.msgpack")
	_check("record_done path", _same(record_done.get("path"), "/home/me/recordings/level_1"))
	_check("record_done frames", _same(record_done.get("frames"), 300))
	var error_record: Dictionary = _decode("error_record.msgpack")
	_check("error_record code", _same(error_record.get("code"), 507))
	_check("error_record name", _same(error_record.get("name"), "record_full"))
	var error_prompt: Dictionary = _decode("error_prompt.msgpack")
	_check("error_prompt code", _same(error_prompt.get("code"), 422))
	var prompt_message := str(error_prompt.get("message", ""))
	_check("error_prompt names the field", prompt_message.begins_with('"prompt"'))
	_check("error_prompt ref", _same(error_prompt.get("ref"), "reset"))
	var sent_prompt: Dictionary = _decode("hello_prompt.msgpack")
	_check("hello_prompt prompt", _same(sent_prompt.get("prompt"), PROMPT))
	_check("hello_prompt bytes", PROMPT.to_utf8_buffer().size() == 64)
	var reset_ok: Dictionary = _decode("reset_ok.msgpack")
	_check("reset_ok", _same(reset_ok, {"type": "reset_ok", "episode": 2, "seed": 42}))


## input_guidance's map (1.3), built as tests/vectors/generate.py builds it: a 4x2 guidance whose
## top-down values are flat colours 0, 10, ..., 230, depths with both kinds of "no surface" (+inf,
## 0) and ids up to 65535, sent bottom_up with f16 depth.
func _guidance_map() -> Dictionary:
	var colour := PackedByteArray()
	for i in 24:
		colour.append(i * 10)
	var depth := PackedFloat32Array([0.5, 1.0, 2.5, INF, 4.0, 8.0, 0.0, 1.25])
	var ids := PackedInt32Array([1, 2, 3, 65535, 0, 256, 7, 8])
	return Protocol.guidance(
		4,
		2,
		Protocol.flip_rows(colour, 4, 2, 3),
		Protocol.flip_rows(Protocol.depth_bytes(depth, "f16"), 4, 2, 2),
		Protocol.flip_rows(Protocol.ids_bytes(ids), 4, 2, 2),
		"f16",
		"bottom_up"
	)


## Guidance (1.3): the welcome's offer, the refusal, the buffer encodings and the conversion of
## readback images (guidance_capture.gd) into buffers.
func _test_guidance() -> void:
	var guided: Dictionary = _decode("welcome_guidance.msgpack")
	var offer := Protocol.guidance_offer(guided)
	var want_offer := {
		"buffers": ["colour", "depth"], "width": 128, "height": 128, "scales": [1, 2, 4]
	}
	_check("welcome_guidance offer", _same(offer, want_offer))
	_check("welcome_guidance capability", "guidance" in guided.get("capabilities", []))
	_check("welcome_guidance minor", _same(guided.get("minor"), Protocol.MINOR))
	var sizes := Protocol.guidance_sizes(offer)
	var want_sizes := [Vector2i(128, 128), Vector2i(64, 64), Vector2i(32, 32)]
	_check("welcome_guidance sizes", _same(sizes, want_sizes))
	var odd := {"width": 100, "height": 75, "scales": [1, 3, 200]}
	_check("guidance sizes round down", _same(Protocol.guidance_sizes(odd), [
		Vector2i(100, 75), Vector2i(33, 25)
	]))
	var unguided := Protocol.guidance_offer(_decode("welcome.msgpack"))
	_check("no offer without the capability", unguided.is_empty())
	var error: Dictionary = _decode("error_guidance.msgpack")
	_check("error_guidance code", _same(error.get("code"), 422))
	_check("error_guidance name", _same(error.get("name"), "bad_field"))
	_check("error_guidance ref", _same(error.get("ref"), "input"))
	var message := str(error.get("message", ""))
	_check("error_guidance names the field", message.begins_with('"guidance.depth"'))
	var sent: Dictionary = _decode("input_guidance.msgpack")
	var map: Dictionary = sent.get("guidance", {})
	var keys := ["width", "height", "row_order", "colour", "depth", "depth_format", "ids"]
	_check("input_guidance key order", _same(map.keys(), keys))
	_check("guidance is the input's last key", sent.keys()[-1] == "guidance")
	var top_down: PackedByteArray = Protocol.flip_rows(map.get("depth", PackedByteArray()), 4, 2, 2)
	_check("input_guidance depth +inf", top_down.size() == 16 and top_down.decode_half(6) == INF)
	_check("input_guidance depth 2.5", top_down.size() == 16 and top_down.decode_half(4) == 2.5)
	var one := PackedFloat32Array([1.0])
	_check("f32 depth bytes", Protocol.depth_bytes(one) == PackedByteArray([0, 0, 0x80, 0x3f]))
	_check("f16 depth bytes", Protocol.depth_bytes(one, "f16") == PackedByteArray([0, 0x3c]))
	var id_bytes := Protocol.ids_bytes(PackedInt32Array([258, 65535]))
	_check("ids bytes", id_bytes == PackedByteArray([2, 1, 0xff, 0xff]))
	_test_guidance_readback()


## A 2x1 readback as the viewports give it: pixel 0 a surface (colour, depth 2.5, id 258 as the
## shader writes it), pixel 1 the background (sky colour; depth 0 and id 0).
func _test_guidance_readback() -> void:
	var colour := Image.create_from_data(
		2, 1, false, Image.FORMAT_RGBA8, PackedByteArray([10, 20, 30, 255, 120, 180, 240, 255])
	)
	var raw := PackedByteArray()
	raw.resize(16)
	raw.fill(0)
	raw.encode_half(0, 2.5)
	raw.encode_half(2, (2 + 0.25) / 255.0)  # low byte of 258
	raw.encode_half(4, (1 + 0.25) / 255.0)  # high byte
	raw.encode_half(6, 1.0)
	raw.encode_half(14, 1.0)
	var geometry := Image.create_from_data(2, 1, false, Image.FORMAT_RGBAH, raw)
	var wanted := ["colour", "depth", "ids"]
	var map := GuidanceCapture.buffers_map(colour, geometry, wanted, "f16")
	var keys := ["width", "height", "row_order", "colour", "depth", "depth_format", "ids"]
	_check("readback map keys", _same(map.keys(), keys))
	_check("readback size", _same([map.get("width"), map.get("height")], [2, 1]))
	var rgb := PackedByteArray([10, 20, 30, 120, 180, 240])
	_check("readback colour", map.get("colour") == rgb)
	var half := PackedByteArray([0, 0, 0, 0])
	half.encode_half(0, 2.5)
	_check("readback depth f16", map.get("depth") == half)
	_check("readback ids", map.get("ids") == PackedByteArray([2, 1, 0, 0]))
	var geometry32 := Image.create_from_data(2, 1, false, Image.FORMAT_RGBAH, raw)
	var map32 := GuidanceCapture.buffers_map(null, geometry32, ["depth"], "f32")
	var single := PackedByteArray([0, 0, 0, 0, 0, 0, 0, 0])
	single.encode_float(0, 2.5)
	_check("readback depth f32", map32.get("depth") == single and map32.get("depth_format") == "f32")
	var opaque := Image.create_from_data(2, 1, false, Image.FORMAT_RGBAH, raw)
	opaque.convert(Image.FORMAT_RGBH)  # what get_image gives for an opaque HDR viewport
	var map_rgbh := GuidanceCapture.buffers_map(null, opaque, ["depth", "ids"], "f16")
	_check("readback from RGBH depth", map_rgbh.get("depth") == half)
	_check("readback from RGBH ids", map_rgbh.get("ids") == PackedByteArray([2, 1, 0, 0]))
	var rgba8 := Image.create_from_data(2, 1, false, Image.FORMAT_RGBA8, raw.slice(0, 8))
	var refused := GuidanceCapture.buffers_map(null, rgba8, ["depth"])
	_check("an 8-bit geometry image is refused", refused.is_empty())


## msgpack_values.msgpack: every integer boundary, float, str, bin and container width.
func _test_values() -> void:
	var data := _vector("msgpack_values.msgpack")
	var got: Variant = _decode("msgpack_values.msgpack")
	var want := _expected_values()
	if not (got is Array and got.size() == want.size()):
		_check("msgpack_values has %d items" % want.size(), false)
		return
	for i in want.size():
		_check("msgpack_values[%d] decodes" % i, _same(got[i], want[i]))
	# The uint64 maximum is no GDScript int: it decodes to the nearest float, 2^64.
	_check("uint64 max decodes to a float", _same(got[10], float(1 << 62) * 4.0))
	# Each item, encoded alone, equals its bytes in the vector (smallest int encodings, float64,
	# str8/16/32, bin8/16/32, array16, map16); the uint64 maximum is taken as the vector has it.
	var pos := 3  # after the array16 header dc 00 28
	_check("msgpack_values header", data.slice(0, 3) == PackedByteArray([0xdc, 0x00, 0x28]))
	for i in want.size():
		var item: PackedByteArray = Msgpack.encode(want[i])
		if i == 10:
			item = PackedByteArray([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
		_check("msgpack_values[%d] encodes" % i, data.slice(pos, pos + item.size()) == item)
		pos += item.size()
	_check("msgpack_values has nothing after its items", pos == data.size())
	_check("truncated input fails", not Msgpack.decode(data.slice(0, data.size() - 1))[0])
	_check("trailing bytes fail", not Msgpack.decode(PackedByteArray([1, 1]))[0])
	var float32: Array = Msgpack.decode(PackedByteArray([0xca, 0x3f, 0xc0, 0, 0]))
	_check("float32 reads", _same(float32[1], 1.5))
	_check("nil decodes", Msgpack.decode(PackedByteArray([0xc0])) == [true, null])


func _expected_values() -> Array:
	var values: Array = [0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296]
	values.append(float(1 << 62) * 4.0)  # 18446744073709551615 as GDScript reads it
	values.append_array([-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649])
	values.append(-9223372036854775807 - 1)
	values.append_array([0.0, -1.5, PI])
	values.append(_decode("msgpack_values.msgpack")[24])  # 1e300: a literal would test the parser
	values.append_array([true, false, null, "", "a".repeat(31), "b".repeat(32), "c".repeat(256)])
	var utf8 := PackedByteArray([104, 195, 169, 108, 108, 111, 32, 226, 130, 172, 32])
	utf8.append_array(PackedByteArray([240, 159, 152, 128]))
	values.append(utf8.get_string_from_utf8())
	values.append(PackedByteArray())
	values.append(PackedByteArray([1, 2]))
	var ramp := _ramp(256)
	ramp.append_array(_ramp(256))
	values.append(ramp)
	var zeros := PackedByteArray()
	zeros.resize(65536)
	zeros.fill(0)
	values.append(zeros)
	values.append(range(16))
	var keyed := {}
	for i in 16:
		keyed["k%02d" % i] = i
	values.append(keyed)
	values.append({"nested": {"x": [1, 2.5]}})
	return values


func _test_zmtp_builders() -> void:
	_expect_bytes("greeting", Zmtp.greeting(), "zmtp_greeting.bin")
	_expect_bytes("READY DEALER", Zmtp.ready("DEALER"), "zmtp_ready_dealer.bin")
	_expect_bytes("READY ROUTER", Zmtp.ready("ROUTER"), "zmtp_ready_router.bin")
	_expect_bytes("PING", Zmtp.ping(100, "ab".to_ascii_buffer()), "zmtp_ping.bin")
	_expect_bytes("PONG", Zmtp.pong("ab".to_ascii_buffer()), "zmtp_pong.bin")
	_expect_bytes("ERROR", Zmtp.error("bad"), "zmtp_error.bin")
	var hello := [_vector("hello.msgpack")]
	_expect_bytes("one-frame message", Zmtp.message(hello), "zmtp_message_hello.bin")
	var frame := [_vector("frame.msgpack"), _vector("frame.payload.bin")]
	_expect_bytes("two-frame message", Zmtp.message(frame), "zmtp_message_frame.bin")
	var long_body := _ramp(256)
	var tail := PackedByteArray()
	tail.resize(44)
	tail.fill(0)
	long_body.append_array(tail)
	_expect_bytes("long frame", Zmtp.message([long_body]), "zmtp_long_frame.bin")
	_check("greeting is valid", Zmtp.is_valid_greeting(_vector("zmtp_greeting.bin")))
	_check("non-ZMTP bytes are no greeting", not Zmtp.is_valid_greeting(_ramp(64)))


func _test_zmtp_parsing() -> void:
	var ready: Dictionary = Zmtp.parse_frame(_vector("zmtp_ready_router.bin"), 0, 1024)
	_check("READY is a command", (ready.get("flags", 0) & Zmtp.FLAG_COMMAND) != 0)
	_check("READY name", Zmtp.command_name(ready.get("body", PackedByteArray())) == "READY")
	var props: Dictionary = Zmtp.parse_properties(
		Zmtp.command_data(ready.get("body", PackedByteArray()))
	)
	var socket_type: PackedByteArray = props.get("Socket-Type", PackedByteArray())
	_check("READY Socket-Type", socket_type.get_string_from_ascii() == "ROUTER")
	var ping: Dictionary = Zmtp.parse_frame(_vector("zmtp_ping.bin"), 0, 1024)
	var ping_data: PackedByteArray = Zmtp.command_data(ping.get("body", PackedByteArray()))
	_check("PING name", Zmtp.command_name(ping.get("body", PackedByteArray())) == "PING")
	_check("PING TTL", ping_data.slice(0, 2) == PackedByteArray([0, 100]))
	_check("PONG answers PING", Zmtp.pong(ping_data.slice(2)) == _vector("zmtp_pong.bin"))
	var error: Dictionary = Zmtp.parse_frame(_vector("zmtp_error.bin"), 0, 1024)
	_check("ERROR name", Zmtp.command_name(error.get("body", PackedByteArray())) == "ERROR")
	var wire := _vector("zmtp_message_frame.bin")
	var first: Dictionary = Zmtp.parse_frame(wire, 0, 1024)
	_check("first frame has MORE", first.get("flags", 0) == Zmtp.FLAG_MORE)
	_check("first frame body", first.get("body") == _vector("frame.msgpack"))
	var second: Dictionary = Zmtp.parse_frame(wire, first.get("next", 0), 1024)
	_check("second frame is the last", second.get("flags", -1) == 0)
	_check("second frame body", second.get("body") == _vector("frame.payload.bin"))
	_check("frames fill the message", second.get("next", 0) == wire.size())
	var long_wire := _vector("zmtp_long_frame.bin")
	var long_frame: Dictionary = Zmtp.parse_frame(long_wire, 0, 1024)
	_check("long frame flag", long_frame.get("flags", 0) == Zmtp.FLAG_LONG)
	_check("long frame body", long_frame.get("body", PackedByteArray()).size() == 300)
	_check("incomplete frame waits", Zmtp.parse_frame(long_wire.slice(0, 100), 0, 1024).is_empty())
	_check("incomplete header waits", Zmtp.parse_frame(long_wire.slice(0, 5), 0, 1024).is_empty())
	_check("frame over the limit fails", Zmtp.parse_frame(long_wire, 0, 299).has("error"))
	var huge := long_wire.duplicate()
	huge[1] = 0x80  # a size of 2^63 or more: no GDScript int
	_check("64-bit size with the top bit fails", Zmtp.parse_frame(huge, 0, 1024).has("error"))


## Bytes 0, 1, ..., n-1 (mod 256).
func _ramp(n: int) -> PackedByteArray:
	var out := PackedByteArray()
	out.resize(n)
	for i in n:
		out[i] = i % 256
	return out


## Deep equality that also requires the same types (1 is not 1.0, a map keeps its key order).
func _same(a: Variant, b: Variant) -> bool:
	if typeof(a) != typeof(b):
		return false
	var same := true
	if a is Array:
		same = a.size() == b.size()
		for i in a.size():
			same = same and _same(a[i], b[i])
	elif a is Dictionary:
		same = _same(a.keys(), b.keys())
		for key in a:
			same = same and b.has(key) and _same(a[key], b[key])
	else:
		same = a == b
	return same
