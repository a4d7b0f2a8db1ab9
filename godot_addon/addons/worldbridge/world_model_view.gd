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

signal connected(welcome: Dictionary)
signal frame_received(header: Dictionary)
signal error_received(code: int, error_name: String, message: String)
signal disconnected(reason: String)
## A recording was written: the daemon's record_done (name, path, frames, episodes).
signal recorded(done: Dictionary)

const Client := preload("worldbridge_client.gd")
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
## size, with the camera's pose: give the camera its own SubViewport (or hide this view while
## recording) so the image is the level as the engine renders it. Needs camera_path.
@export var record := false
## A wish for the recording's folder name; the daemon keeps [A-Za-z0-9_-] and may add -2, -3.
@export var record_name := "level"

## Frames received per second.
var fps := 0.0
## Input-to-frame latency of the newest frame, in ms, on this client's clock.
var latency_ms := 0.0
var client: Client

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
	if client != null:
		client.stop()


func _process(delta: float) -> void:
	client.poll()
	if not _pending_header.is_empty():
		_show(_pending_header, _pending_pixels)
		_pending_header = {}
		_pending_pixels = PackedByteArray()
	var period := 1.0 / send_rate_hz
	_send_elapsed += delta
	if _send_elapsed >= period:
		_send_elapsed = minf(_send_elapsed - period, period)
		if client.is_running():
			_send_input()
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
	client.reset(seed_value, null, new_prompt)
	if new_prompt != "":
		prompt = new_prompt


## Stops recording: the daemon writes the dataset and answers record_done (path, frames), which
## arrives as the `recorded` signal.
func stop_recording() -> void:
	record = false
	client.stop_recording()


func _send_input() -> void:
	var move := Input.get_vector(ACTION_LEFT, ACTION_RIGHT, ACTION_BACK, ACTION_FORWARD)
	var buttons := BUTTON_RUN if Input.is_action_pressed(ACTION_RUN) else 0
	var pose: Variant = null
	var fov_deg: Variant = null
	var camera := _camera()
	if send_pose and camera != null:
		pose = Protocol.pose_from_transform(camera.global_transform)
		fov_deg = clampf(camera.fov, 1.0, 170.0)
	var image: Image = _recorded_image(camera) if record and client.recording else null
	client.send_input(move, _look, buttons, pose, fov_deg, image)
	_look = Vector2.ZERO


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
	disconnected.emit(reason)
