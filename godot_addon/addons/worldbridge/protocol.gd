## Builders for the messages a client sends (docs/protocol.md, version 1.3; mirrors
## bridge/protocol/messages.py and, for guidance, bridge/protocol/guidance.py).
##
## Keys are written in the documented order, so encoded messages equal tests/vectors/ byte for
## byte; tests/test_godot_addon.py checks each builder's order against bridge/protocol/messages.py.
## Numbers the protocol calls floats are passed through float() so they encode as float64.

const MAJOR := 1
const MINOR := 3
const FORMATS := ["rgb8", "rgba8", "jpeg"]
## The guidance buffers (1.3, section 4c), in the order of the guidance map's keys.
const GUIDANCE_BUFFERS := ["colour", "depth", "ids"]
## Encodings of guidance.depth: little-endian IEEE 754 float32 or float16.
const DEPTH_FORMATS := ["f32", "f16"]
## The longest prompt (hello, reset; 1.2) the daemon takes, in bytes of UTF-8 (longer: error 422).
const MAX_PROMPT_BYTES := 2000


## hello. extra may set row_order, credits, capabilities, jpeg_quality, seed, token and (1.2)
## prompt: the scene in text for worlds with the "prompt" capability ("" = the world's default).
static func hello(
	client: String, engine: String, width: int, height: int, format: String, extra := {}
) -> Dictionary:
	var msg := {
		"type": "hello",
		"major": MAJOR,
		"minor": MINOR,
		"client": client,
		"engine": engine,
		"width": width,
		"height": height,
		"format": format,
		"row_order": extra.get("row_order", "top_down"),
		"credits": extra.get("credits", 0),
		"capabilities": extra.get("capabilities", []),
		"jpeg_quality": extra.get("jpeg_quality", 85),
		"seed": extra.get("seed", 0),
	}
	var token: String = extra.get("token", "")
	if token != "":
		msg["token"] = token
	var prompt: String = extra.get("prompt", "")
	if prompt != "":
		msg["prompt"] = prompt
	return msg


## input. pose: a pose_map() or null; fov_deg: a number or null; image: an image_spec() or null,
## only while recording (the engine's rendered frame, its bytes in frame 2; protocol 1.1);
## guidance_map: a guidance() map or null (1.3: the buffers of the camera `pose` places; the
## input's last key).
static func input(
	seq: int,
	t: float,
	move: Vector2,
	look: Vector2,
	buttons: int,
	pose: Variant = null,
	fov_deg: Variant = null,
	image: Variant = null,
	guidance_map: Variant = null
) -> Dictionary:
	var msg := {
		"type": "input",
		"seq": seq,
		"t": t,
		"move": [float(move.x), float(move.y)],
		"look": [float(look.x), float(look.y)],
		"buttons": buttons,
	}
	if pose != null:
		msg["pose"] = pose
	if fov_deg != null:
		msg["fov_deg"] = float(fov_deg)
	if image != null:
		msg["image"] = image
	if guidance_map != null:
		msg["guidance"] = guidance_map
	return msg


static func credit(n: int) -> Dictionary:
	return {"type": "credit", "n": n}


## reset. pose: a pose_map() or null; image: an image_spec() or null (its bytes go in frame 2);
## prompt (1.2): the scene in text from the new episode on ("" = keep the session's).
static func reset(
	episode_seed: int, pose: Variant = null, image: Variant = null, prompt := ""
) -> Dictionary:
	var msg := {"type": "reset", "seed": episode_seed}
	if pose != null:
		msg["pose"] = pose
	if image != null:
		msg["image"] = image
	if prompt != "":
		msg["prompt"] = prompt
	return msg


## record_start (1.1). name is only a wish: the daemon keeps [A-Za-z0-9_-] and picks the folder.
static func record_start(name := "") -> Dictionary:
	var msg := {"type": "record_start"}
	if name != "":
		msg["name"] = name
	return msg


static func record_stop() -> Dictionary:
	return {"type": "record_stop"}


static func ping(t: float) -> Dictionary:
	return {"type": "ping", "t": t}


static func bye() -> Dictionary:
	return {"type": "bye"}


## {"p": [x, y, z], "q": [x, y, z, w]} from plain numbers (arrays keep float64 precision).
static func pose_map(p: Array, q: Array) -> Dictionary:
	return {
		"p": [float(p[0]), float(p[1]), float(p[2])],
		"q": [float(q[0]), float(q[1]), float(q[2]), float(q[3])],
	}


## The pose of a node's global transform, as-is (engine "godot": the daemon converts).
static func pose_from_transform(xform: Transform3D) -> Dictionary:
	var o := xform.origin
	var q := xform.basis.get_rotation_quaternion()
	return pose_map([o.x, o.y, o.z], [q.x, q.y, q.z, q.w])


## The "image" map of a reset that carries a start image, or of an input that carries a
## recorded frame.
static func image_spec(
	width: int, height: int, format: String, row_order := "top_down"
) -> Dictionary:
	return {"width": width, "height": height, "format": format, "row_order": row_order}


## The "guidance" map of an input (1.3, section 4c), keys in the documented order. Each buffer is a
## PackedByteArray already in row_order, rows without padding, or null when not sent: colour rgb8
## (W*H*3), depth little-endian floats (W*H*4 for "f32", W*H*2 for "f16"; distance along the
## pixel's ray in world units, +inf or <= 0 where there is no surface), ids uint16 little-endian
## (W*H*2). depth_format is written only with a depth.
static func guidance(
	width: int,
	height: int,
	colour: Variant = null,
	depth: Variant = null,
	ids: Variant = null,
	depth_format := "f32",
	row_order := "top_down"
) -> Dictionary:
	var msg := {"width": width, "height": height, "row_order": row_order}
	if colour != null:
		msg["colour"] = colour
	if depth != null:
		msg["depth"] = depth
		msg["depth_format"] = depth_format
	if ids != null:
		msg["ids"] = ids
	return msg


## Depths (world units, top row first or in whatever order the caller keeps) as guidance.depth
## bytes: little-endian float32 ("f32") or float16 ("f16"; encode_half truncates towards zero and
## writes values of 65536 and more as +inf, which also means "no surface").
static func depth_bytes(values: PackedFloat32Array, depth_format := "f32") -> PackedByteArray:
	var size := 2 if depth_format == "f16" else 4
	var out := PackedByteArray()
	out.resize(values.size() * size)
	for i in values.size():
		if size == 2:
			out.encode_half(i * 2, values[i])
		else:
			out.encode_float(i * 4, values[i])
	return out


## Ids (0..65535) as guidance.ids bytes: uint16 little-endian.
static func ids_bytes(values: PackedInt32Array) -> PackedByteArray:
	var out := PackedByteArray()
	out.resize(values.size() * 2)
	for i in values.size():
		out.encode_u16(i * 2, values[i])
	return out


## A buffer of `height` rows of width * bytes_per_pixel bytes with its rows in the opposite order
## (top_down <-> bottom_up).
static func flip_rows(
	data: PackedByteArray, width: int, height: int, bytes_per_pixel: int
) -> PackedByteArray:
	var row := width * bytes_per_pixel
	if row <= 0 or data.size() != row * height:
		return data
	var out := PackedByteArray()
	for y in range(height - 1, -1, -1):
		out.append_array(data.slice(y * row, (y + 1) * row))
	return out


## The welcome's "guidance" map (1.3) of a world with the "guidance" capability, checked and with
## plain types: {"buffers": the buffers it reads (Array of String), "width", "height": int,
## "scales": Array of int}. Empty for a world that takes no guidance.
static func guidance_offer(welcome: Dictionary) -> Dictionary:
	var offered: Variant = welcome.get("guidance")
	if not ("guidance" in welcome.get("capabilities", []) and offered is Dictionary):
		return {}
	var buffers := []
	for name in GUIDANCE_BUFFERS:
		if name in offered.get("buffers", []):
			buffers.append(name)
	var scales := []
	for s in offered.get("scales", [1]):
		if typeof(s) == TYPE_INT and s >= 1:
			scales.append(s)
	return {
		"buffers": buffers,
		"width": int(offered.get("width", welcome.get("width", 0))),
		"height": int(offered.get("height", welcome.get("height", 0))),
		"scales": scales,
	}


## The buffer sizes a guidance_offer() takes, one per listed scale (width / s x height / s,
## rounded down; sizes of 0 left out), in the offer's order.
static func guidance_sizes(offer: Dictionary) -> Array:
	var sizes := []
	for s in offer.get("scales", []):
		# float division, then int(): rounded down, as the daemon does (no integer-division warning)
		var size := Vector2i(int(float(offer["width"]) / s), int(float(offer["height"]) / s))
		if size.x >= 1 and size.y >= 1 and not sizes.has(size):
			sizes.append(size)
	return sizes
