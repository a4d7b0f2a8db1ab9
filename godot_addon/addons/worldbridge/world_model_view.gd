extends TextureRect
## Plays a WorldBridge world model: sends this game's controller input (and, optionally, a
## Camera3D's pose) to the daemon and shows the newest frame. Registered by the addon's plugin as
## the custom node "WorldModelView".
##
## One ImageTexture is created in _ready and kept for the node's lifetime; each frame updates it
## in place (ImageTexture.update while size and format stay; set_image only when they change).
## For 3D, assign `texture` to a Sprite3D or to a material's albedo_texture (and hide this node
## if it should not also draw in 2D), or place the view inside a SubViewport.
##
## Input: move = Input.get_vector(wb_left, wb_right, wb_back, wb_forward); look = mouse motion
## while the mouse is captured, in degrees (mouse_sensitivity per pixel), summed between inputs;
## buttons bit 0 = wb_run. Missing wb_* actions are added at runtime with W/S/A/D/Shift.
##
## Guidance (protocol 1.3): with send_guidance on, a world whose welcome offers guidance gets the
## camera's cheap buffers (flat colour, ray depth, ids) with each input; see guidance_capture.gd.

signal connected(welcome: Dictionary)
signal frame_received(header: Dictionary)
signal error_received(code: int, error_name: String, message: String)
signal disconnected(reason: String)
## A recording was written: the daemon's record_done (name, path, frames, episodes).
signal recorded(done: Dictionary)

const Client := preload("worldbridge_client.gd")
const GuidanceCapture := preload("guidance_capture.gd")
const Protocol := preload("protocol.gd")

const ACTION_FORWARD := "wb_forward"
const ACTION_BACK := "wb_back"
const ACTION_LEFT := "wb_left"
const ACTION_RIGHT := "wb_right"
const ACTION_RUN := "wb_run"
const DEFAULT_KEYS := {
	ACTION_FORWARD: KEY_W,
	ACTION_BACK: KEY_S,
	ACTION_LEFT: KEY_A,
	ACTION_RIGHT: KEY_D,
	ACTION_RUN: KEY_SHIFT,
}
const BUTTON_RUN := 1
## An input uses the pose of the newest guidance capture while it is at most this old.
const GUIDANCE_POSE_MAX_AGE_MS := 500

## Daemon address, tcp://HOST:PORT.
@export var address := "tcp://127.0.0.1:5557"
## Requested frame size; a neural world may answer with its native size (see `connected`).
@export_range(1, 1024) var width := 256
@export_range(1, 1024) var height := 256
@export_enum("rgb8", "rgba8", "jpeg") var format := "rgb8"
## Frames granted ahead; 1-3 keeps latency low.
@export_range(1, 16) var credits := 2
## How often input is sent, per second.
@export_range(1.0, 120.0) var send_rate_hz := 30.0
## A Camera3D whose global transform is sent as the pose (the engine then owns the camera).
@export var camera_path: NodePath
@export var send_pose := true
## Degrees of look per pixel of mouse motion.
@export var mouse_sensitivity := 0.1
## Authentication token, when the daemon is configured with one.
@export var token := ""
## The scene in text, for worlds whose welcome lists the "prompt" capability (protocol 1.2; at
## most 2000 bytes as UTF-8). Empty: the world's default. Sent in the hello; reset_episode() can
## change it.
@export_multiline var prompt := ""
@export var autostart := true
## Record this game's own frames for fine-tuning (docs/finetune.md; the daemon must run with
## --record-dir). Each input then carries the camera's viewport image, scaled to the session's
## size, with the camera's pose (sent even with send_pose off) and, with send_guidance, the
## guidance of that same frame: give the camera its own SubViewport (or hide this view while
## recording) so the image is the level as the engine renders it. Needs camera_path. A frame
## renders at the end of the game frame, so each recorded input goes out one frame later.
@export var record := false
## A wish for the recording's folder name; the daemon keeps [A-Za-z0-9_-] and may add -2, -3.
@export var record_name := "level"
## Protocol 1.3: for worlds whose welcome lists "guidance", render this camera's guidance buffers
## (the ones the world reads: flat unlit colour per material, distance along each pixel's ray in
## world units, a uint16 id per mesh) in SubViewports of their own, read them back without
## stalling (Godot 4.4+; one frame late with a stall before), and send each with the pose it was
## rendered from. Needs camera_path; depth and ids need the Forward+ renderer. Inputs then carry
## the newest capture's pose (a readback, about 2 frames, behind the camera). guidance_scale,
## guidance_depth_format and guidance_sky_colour tune it from code.
@export var send_guidance := false:
	set(value):
		send_guidance = value
		if client != null and value and client.is_running():
			_start_guidance(client.welcome)
		elif not value:
			_stop_guidance()

## Frames received per second.
var fps := 0.0
## Input-to-frame latency of the newest frame, in ms, on this client's clock.
var latency_ms := 0.0
var client: Client
## Guidance (send_guidance): buffers of width / s x height / s for the smallest scale s the world
## lists that is at least this and whose buffers fit max_message_bytes.
var guidance_scale := 1
## "f16" (what the GPU renders; half the bytes) or "f32".
var guidance_depth_format := "f16"
## Flat colour where the camera sees no surface (the maze's sky colour).
var guidance_sky_colour := Color8(120, 180, 240)

var _image: Image
var _image_texture: ImageTexture
var _texture_size := Vector2i.ZERO
var _texture_format := -1
var _look := Vector2.ZERO
var _send_elapsed := 0.0
var _pending_header := {}
var _pending_pixels := PackedByteArray()
var _fps_frames := 0
var _fps_elapsed := 0.0
var _guidance: GuidanceCapture
## The recorded input of the previous frame, sent once its frame has rendered (_send_recorded).
var _recorded_job := {}
var _warned_recorded_guidance := false


func _init() -> void:
	expand_mode = TextureRect.EXPAND_IGNORE_SIZE
	stretch_mode = TextureRect.STRETCH_KEEP_ASPECT_CENTERED


func _ready() -> void:
	_ensure_actions()
	var blank := PackedByteArray()
	blank.resize(width * height * 3)
	blank.fill(0)
	_image = Image.create_from_data(width, height, false, Image.FORMAT_RGB8, blank)
	_image_texture = ImageTexture.create_from_image(_image)
	_texture_size = _image.get_size()
	_texture_format = _image.get_format()
	texture = _image_texture
	client = Client.new()
	client.connected.connect(_on_client_connected)
	client.frame_received.connect(_on_client_frame)
	client.error_received.connect(_on_client_error)
	client.disconnected.connect(_on_client_disconnected)
	client.message_received.connect(_on_client_message)
	if autostart:
		restart()


func _enter_tree() -> void:
	if client != null and autostart and client.state == Client.State.STOPPED:
		restart()  # back in the tree after _exit_tree stopped it


func _exit_tree() -> void:
	_stop_guidance()
	if client != null:
		client.stop()


func _process(delta: float) -> void:
	client.poll()
	if not _pending_header.is_empty():
		_show(_pending_header, _pending_pixels)
		_pending_header = {}
		_pending_pixels = PackedByteArray()
	# before capture(): the guidance viewports still hold the recorded frame's render
	if not _recorded_job.is_empty():
		_send_recorded()
	var period := 1.0 / send_rate_hz
	var send_now := false
	_send_elapsed += delta
	if _send_elapsed >= period:
		_send_elapsed = minf(_send_elapsed - period, period)
		send_now = client.is_running()
	var capture_id := 0
	if _guidance != null and _guidance.is_capturing():
		capture_id = _guidance.capture(send_now and _recording_now())
	if send_now:
		_send_input(capture_id)
	_fps_elapsed += delta
	if _fps_elapsed >= 1.0:
		fps = _fps_frames / _fps_elapsed
		_fps_frames = 0
		_fps_elapsed = 0.0


func _input(event: InputEvent) -> void:
	var motion := event as InputEventMouseMotion
	if motion != null and Input.mouse_mode == Input.MOUSE_MODE_CAPTURED:
		_look += Vector2(motion.relative.x, -motion.relative.y) * mouse_sensitivity


## (Re)connects with the current settings: call it after changing address, size, format,
## credits, token or prompt at run time. A new session starts (a new hello).
func restart() -> void:
	_recorded_job = {}
	client.stop()
	client.address = address
	client.width = width
	client.height = height
	client.format = format
	client.credits = credits
	client.token = token
	client.prompt = prompt
	client.start()


## "running", "connecting", "waiting" (to reconnect), ... for a HUD.
func state_name() -> String:
	return client.state_name() if client != null else "stopped"


## Starts a new episode with this seed; a non-empty new_prompt describes its scene from then on
## (and becomes `prompt`).
func reset_episode(seed_value: int, new_prompt := "") -> void:
	if not _recorded_job.is_empty():
		_send_recorded(false)  # its frame is of the episode that ends: not recorded into the new one
	client.reset(seed_value, null, new_prompt)
	if new_prompt != "":
		prompt = new_prompt


## Stops recording: the daemon writes the dataset and answers record_done (path, frames), which
## arrives as the `recorded` signal.
func stop_recording() -> void:
	record = false
	if not _recorded_job.is_empty():
		_send_recorded(false)  # ahead of record_stop, as an ordinary input
	client.stop_recording()


## capture_id: the guidance capture started this frame (0: none).
func _send_input(capture_id: int) -> void:
	var move := Input.get_vector(ACTION_LEFT, ACTION_RIGHT, ACTION_BACK, ACTION_FORWARD)
	var buttons := BUTTON_RUN if Input.is_action_pressed(ACTION_RUN) else 0
	var pose: Variant = null
	var fov_deg: Variant = null
	var camera := _camera()
	if _recording_now():
		# This input's frame renders at the end of this frame, from the camera as it is now (and its
		# guidance, capture_id, with it): it is read and sent on the next frame, _send_recorded.
		_recorded_job = {
			"frame": Engine.get_process_frames(),
			"move": move,
			"look": _look,
			"buttons": buttons,
			"pose": Protocol.pose_from_transform(camera.global_transform),
			"fov_deg": clampf(camera.fov, 1.0, 170.0),
			"guided": _guidance != null and _guidance.is_capturing(),
			"capture": capture_id,
		}
		_look = Vector2.ZERO
		return
	if send_pose and camera != null:
		pose = Protocol.pose_from_transform(camera.global_transform)
		fov_deg = clampf(camera.fov, 1.0, 170.0)
	var guidance := {}
	if _guidance != null and _guidance.is_capturing():
		var captured := _guidance.take()
		if not captured.is_empty():
			guidance = captured["guidance"]
		# guidance and pose of one camera go together; between captures the pose stays with the
		# newest one, so the world never renders a pose ahead of the guidance it holds
		if _guidance.pose != null and _guidance.pose_age_ms() <= GUIDANCE_POSE_MAX_AGE_MS:
			pose = _guidance.pose
			fov_deg = _guidance.fov_deg
	client.send_input(move, _look, buttons, pose, fov_deg, null, guidance)
	_look = Vector2.ZERO


func _recording_now() -> bool:
	return record and client.recording and _camera() != null


## Sends the previous frame's recorded input: the image that frame rendered, the pose it rendered
## from and, when guidance is captured, the guidance rendered from that pose in the same frame.
## Without them all (a frame skipped, a guidance that could not be read), or with_image false, it
## goes as an ordinary input, so its move and look still count, and nothing mismatched is recorded.
func _send_recorded(with_image := true) -> void:
	var job := _recorded_job
	_recorded_job = {}
	var captured := {}
	if job["capture"] > 0 and _guidance != null:
		captured = _guidance.take_recorded(job["capture"])  # also frees it when not read
	if not client.is_running():
		return
	var pose: Variant = job["pose"]
	var fov_deg: Variant = job["fov_deg"]
	var image: Image = null
	var next_frame := Engine.get_process_frames() == int(job["frame"]) + 1
	if with_image and next_frame and record and client.recording:
		image = _recorded_image(_camera())
	var guidance := {}
	if job["guided"] and not captured.is_empty():
		guidance = captured["guidance"]
		pose = captured["pose"]
		fov_deg = captured["fov_deg"]
	elif job["guided"] and image != null:
		# a guided world would refuse the image, or record it with guidance of another frame
		image = null
		if not _warned_recorded_guidance:
			push_warning("WorldBridge: a recorded frame had no guidance of its own: not recorded")
			_warned_recorded_guidance = true
	client.send_input(job["move"], job["look"], job["buttons"], pose, fov_deg, image, guidance)


## The camera's viewport as this game rendered it, at the session's size (get_image reads the
## texture back from the GPU: a stall per call, which recording accepts).
func _recorded_image(camera: Camera3D) -> Image:
	if camera == null:
		return null
	var image := camera.get_viewport().get_texture().get_image()
	var size := Vector2i(
		int(client.welcome.get("width", width)), int(client.welcome.get("height", height))
	)
	if image.get_size() != size:
		image.resize(size.x, size.y, Image.INTERPOLATE_BILINEAR)
	return image


## Starts capturing guidance for this session, when send_guidance is on and the world takes it.
func _start_guidance(welcome: Dictionary) -> void:
	_stop_guidance()
	if not send_guidance or not is_inside_tree():
		return
	var offer := Protocol.guidance_offer(welcome)
	var camera := _camera()
	var why := ""
	if offer.is_empty():
		why = "the world %s takes no guidance" % welcome.get("world", "")
	elif offer["buffers"].is_empty():
		why = "the world reads no guidance buffer"
	elif camera == null:
		why = "send_guidance needs camera_path"
	else:
		why = GuidanceCapture.unsupported_reason(offer["buffers"])
	var buffer_size := Vector2i.ZERO if why != "" else _guidance_size(offer, welcome)
	if why == "" and buffer_size == Vector2i.ZERO:
		why = "no guidance size of the world fits max_message_bytes"
	if why != "":
		push_warning("WorldBridge: no guidance sent: " + why)
		return
	if _guidance == null:
		_guidance = GuidanceCapture.new()
		_guidance.name = "GuidanceCapture"
		add_child(_guidance)
	_guidance.sky_colour = guidance_sky_colour
	_guidance.start(camera, buffer_size, offer["buffers"], guidance_depth_format)


func _stop_guidance() -> void:
	if _guidance != null:
		_guidance.stop()


## The size guidance goes at: of the offer's scales, the smallest at least guidance_scale (else the
## largest) whose buffers fit the daemon's max_message_bytes; ZERO when none does.
func _guidance_size(offer: Dictionary, welcome: Dictionary) -> Vector2i:
	var scales: Array = offer["scales"].duplicate()
	scales.sort()
	var wanted := scales.filter(func(s: int) -> bool: return s >= guidance_scale)
	if wanted.is_empty() and not scales.is_empty():
		wanted = [scales[-1]]
	var per_pixel := 0
	for buffer in offer["buffers"]:
		if buffer == "colour":
			per_pixel += 3
		elif buffer == "depth":
			per_pixel += 2 if guidance_depth_format == "f16" else 4
		else:
			per_pixel += 2
	var limits: Dictionary = welcome.get("limits", {})
	var max_bytes := int(limits.get("max_message_bytes", 4 << 20))
	for s in wanted:
		var one := {"width": offer["width"], "height": offer["height"], "scales": [s]}
		for candidate in Protocol.guidance_sizes(one):
			if candidate.x * candidate.y * per_pixel + 1024 <= max_bytes:
				return candidate
	return Vector2i.ZERO


func _camera() -> Camera3D:
	if camera_path.is_empty():
		return null
	return get_node_or_null(camera_path) as Camera3D


## Puts one frame into the texture (the newest of this game frame; older ones were skipped).
func _show(header: Dictionary, pixels: PackedByteArray) -> void:
	var frame_format := str(header.get("format", ""))
	if frame_format == "jpeg":
		if _image.load_jpg_from_buffer(pixels) != OK:
			push_warning("WorldBridge: a jpeg frame did not decode")
			return
	else:
		var w := int(header.get("width", 0))
		var h := int(header.get("height", 0))
		var channels := 4 if frame_format == "rgba8" else 3
		if w <= 0 or h <= 0 or pixels.size() != w * h * channels:
			push_warning("WorldBridge: frame size does not match its header")
			return
		var image_format := Image.FORMAT_RGBA8 if channels == 4 else Image.FORMAT_RGB8
		_image.set_data(w, h, false, image_format, pixels)
		if str(header.get("row_order", "top_down")) == "bottom_up":
			_image.flip_y()
	var image_size := _image.get_size()
	if image_size == _texture_size and _image.get_format() == _texture_format:
		_image_texture.update(_image)
	else:
		_image_texture.set_image(_image)
		_texture_size = image_size
		_texture_format = _image.get_format()
	if int(header.get("input_seq", -1)) >= 0:
		latency_ms = (Client.clock() - float(header.get("input_t", 0.0))) * 1000.0
	frame_received.emit(header)


func _ensure_actions() -> void:
	for action in DEFAULT_KEYS:
		if not InputMap.has_action(action):
			InputMap.add_action(action)
			var key := InputEventKey.new()
			key.physical_keycode = DEFAULT_KEYS[action]
			InputMap.action_add_event(action, key)


func _on_client_connected(welcome: Dictionary) -> void:
	_start_guidance(welcome)
	if record and "record" in welcome.get("capabilities", []):
		client.start_recording(record_name)
	elif record:
		push_warning("WorldBridge: this daemon does not record (start it with --record-dir)")
	connected.emit(welcome)


func _on_client_frame(header: Dictionary, pixels: PackedByteArray) -> void:
	_pending_header = header
	_pending_pixels = pixels
	_fps_frames += 1


func _on_client_error(code: int, error_name: String, message: String) -> void:
	error_received.emit(code, error_name, message)


func _on_client_message(msg: Dictionary) -> void:
	if msg.get("type") == "record_done":
		recorded.emit(msg)


func _on_client_disconnected(reason: String) -> void:
	_recorded_job = {}
	_stop_guidance()
	disconnected.emit(reason)
