extends Control
## WorldBridge demo: a WorldModelView fills the window and a label shows FPS, latency and state.
## Click to capture the mouse and look around; W/A/S/D move, Shift runs, R starts a new episode,
## Esc releases the mouse. Start the daemon first: worldbridge serve --world maze

const View := preload("res://addons/worldbridge/world_model_view.gd")

var _world := ""
var _last_error := ""

@onready var view: View = $WorldModelView
@onready var hud: Label = $HUD


func _ready() -> void:
	view.connected.connect(_on_view_connected)
	view.error_received.connect(_on_view_error)
	view.disconnected.connect(_on_view_disconnected)


func _process(_delta: float) -> void:
	var text := "%s  %s\n%.1f FPS   latency %.0f ms" % [
		view.state_name(), _world, view.fps, view.latency_ms
	]
	if _last_error != "":
		text += "\n" + _last_error
	elif not view.client.is_running() and view.client.last_error != "":
		text += "\n" + view.client.last_error
	if Input.mouse_mode != Input.MOUSE_MODE_CAPTURED:
		text += "\nclick to look around, Esc to release the mouse"
	hud.text = text


func _input(event: InputEvent) -> void:
	var click := event as InputEventMouseButton
	if click != null and click.pressed:
		Input.mouse_mode = Input.MOUSE_MODE_CAPTURED
	var key := event as InputEventKey
	if key != null and key.pressed and not key.echo:
		if key.keycode == KEY_ESCAPE:
			Input.mouse_mode = Input.MOUSE_MODE_VISIBLE
		elif key.keycode == KEY_R:
			view.reset_episode(randi())


func _on_view_connected(welcome: Dictionary) -> void:
	_world = "%s %dx%d %s" % [
		welcome.get("world", "?"),
		welcome.get("width", 0),
		welcome.get("height", 0),
		welcome.get("format", "?"),
	]
	_last_error = ""


func _on_view_error(code: int, error_name: String, message: String) -> void:
	_last_error = "error %d %s: %s" % [code, error_name, message]


func _on_view_disconnected(_reason: String) -> void:
	_world = ""  # the client's last_error says why; it reconnects by itself
