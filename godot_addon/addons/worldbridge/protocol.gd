## Builders for the messages a client sends (docs/protocol.md, version 1.2; mirrors
## bridge/protocol/messages.py).
##
## Keys are written in the documented order, so encoded messages equal tests/vectors/ byte for
## byte; tests/test_godot_addon.py checks each builder's order against bridge/protocol/messages.py.
## Numbers the protocol calls floats are passed through float() so they encode as float64.

const MAJOR := 1
const MINOR := 2
const FORMATS := ["rgb8", "rgba8", "jpeg"]
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
## only while recording (the engine's rendered frame, its bytes in frame 2; protocol 1.1).
static func input(
	seq: int,
	t: float,
	move: Vector2,
	look: Vector2,
	buttons: int,
	pose: Variant = null,
	fov_deg: Variant = null,
	image: Variant = null
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
