class_name WorldBridgeClient
extends RefCounted
## One WorldBridge session: a ZMTP 3.1 DEALER on a StreamPeerTCP, polled from the game loop.
##
## Call poll() once per frame (WorldModelView does it in _process). poll() never blocks: it reads
## only the bytes that have arrived, handles every complete ZMTP frame, answers PING with PONG at
## once, writes with put_partial_data, and reconnects with backoff (sending a new hello) after the
## daemon goes away. Credits: hello grants `credits` and every frame received grants one more, so
## that many stay outstanding and a slow game never makes the daemon queue frames.

signal connected(welcome: Dictionary)
signal frame_received(header: Dictionary, pixels: PackedByteArray)
signal message_received(msg: Dictionary)
signal error_received(code: int, error_name: String, message: String)
signal disconnected(reason: String)

enum State { STOPPED, WAITING, CONNECTING, GREETING, READY, HELLO, RUNNING }

const Msgpack := preload("msgpack.gd")
const Protocol := preload("protocol.gd")
const Zmtp := preload("zmtp.gd")

const CLIENT_NAME := "godot/0.1.0"
const FATAL_CODES := [401, 426]  # no session, and trying again cannot help
const RETRY_CODES := [503]  # no session now: reconnect later
const NEW_SESSION_CODES := [408, 409]  # session gone: send hello again
const HANDSHAKE_TIMEOUT_MS := 10000
const SILENCE_TIMEOUT_MS := 45000  # the daemon PINGs every 10 s
const KEEPALIVE_MS := 15000  # a ping when nothing was sent for this long (idle timeout 60 s)
const BACKOFF_MIN_S := 0.25
const BACKOFF_MAX_S := 5.0
const MAX_FRAME_BYTES := 64 << 20
# Recorded frames go out too: only a daemon that stops reading fills this.
const MAX_UNSENT_BYTES := 16 << 20
# A recorded frame is left out when the socket is this far behind.
const MAX_UNSENT_BEFORE_IMAGE := 4 << 20
const LINK_CONNECTING := 0
const LINK_OPEN := 1
const LINK_CLOSED := 2

var address := "tcp://127.0.0.1:5557"
var engine := "godot"
var width := 256
var height := 256
var format := "rgb8"
var row_order := "top_down"
var credits := 2
var jpeg_quality := 85
var episode_seed := 0
var token := ""
## The scene in text for worlds with the "prompt" capability (protocol 1.2; "" = the world's
## default): sent in every hello, and changed by reset(..., prompt) for the episodes after.
var prompt := ""
var auto_reconnect := true
var state := State.STOPPED
var welcome := {}
var last_error := ""
## True between the daemon's record_ok and record_done (protocol 1.1).
var recording := false

var _peer: StreamPeerTCP
var _host := ""
var _port := 0
var _rx := PackedByteArray()
var _tx := PackedByteArray()
var _parts := []
var _seq := 0
var _frames_to_credit := 0
var _backoff_s := BACKOFF_MIN_S
var _retry_at_ms := 0
var _deadline_ms := 0
var _last_message_ms := 0


## Seconds on the clock that input "t" and latency use.
static func clock() -> float:
	return Time.get_ticks_usec() / 1000000.0


## Starts connecting; the client then keeps its session up until stop().
func start() -> void:
	if not _parse_address():
		last_error = "bad address %s (expected tcp://HOST:PORT)" % address
		push_error("WorldBridge: " + last_error)
		state = State.STOPPED
		return
	_backoff_s = BACKOFF_MIN_S
	_retry_at_ms = 0
	state = State.WAITING


## Says bye when in a session, then closes the connection.
func stop() -> void:
	if state == State.RUNNING:
		_send(Protocol.bye())
	_drop("stopped", false)


func is_running() -> bool:
	return state == State.RUNNING


func state_name() -> String:
	return str(State.keys()[state]).to_lower()


## Drives the connection; call once per frame.
func poll() -> void:
	var now := Time.get_ticks_msec()
	if state == State.WAITING and now >= _retry_at_ms:
		_open(now)
	if state <= State.WAITING:
		return
	var link := _link_state()
	if link == LINK_OPEN:
		if state == State.CONNECTING:
			state = State.GREETING
			_write(Zmtp.greeting())
		if _read(now):
			_parse_received()
		_flush()
	elif link == LINK_CLOSED:
		var what := "lost the connection to" if state >= State.GREETING else "cannot reach"
		_drop("%s %s" % [what, address], true)
	if state == State.RUNNING:
		if _frames_to_credit > 0:
			_send(Protocol.credit(mini(_frames_to_credit, _max_credits())))
			_frames_to_credit = 0
		if now - _last_message_ms > KEEPALIVE_MS:
			_send(Protocol.ping(clock()))
	if state > State.WAITING and now > _deadline_ms:
		_drop("no answer from %s" % address, true)


## Sends one input; returns its seq, or -1 when there is no session. While recording, image (an
## Image at the welcome's size) is the frame this game rendered from pose: it goes along as rgb8,
## top row first, unless the socket is behind (then the input goes without it; its look is kept).
## guidance (protocol 1.3): a Protocol.guidance() map of the camera pose places, for worlds whose
## guidance_offer() is not empty; it is left out too while the socket is behind (the daemon holds
## the last one it got).
func send_input(
	move: Vector2,
	look: Vector2,
	buttons: int,
	pose: Variant = null,
	fov_deg: Variant = null,
	image: Image = null,
	guidance := {}
) -> int:
	if state != State.RUNNING:
		return -1
	_seq += 1
	var spec: Variant = null
	var pixels: Variant = null
	var behind := _tx.size() >= MAX_UNSENT_BEFORE_IMAGE
	if image != null and recording and pose != null and not behind:
		var rgb := image
		if rgb.get_format() != Image.FORMAT_RGB8:
			rgb = image.duplicate()
			rgb.convert(Image.FORMAT_RGB8)
		spec = Protocol.image_spec(rgb.get_width(), rgb.get_height(), "rgb8")
		pixels = rgb.get_data()
	var guidance_map: Variant = null if guidance.is_empty() or behind else guidance
	var msg := Protocol.input(_seq, clock(), move, look, buttons, pose, fov_deg, spec, guidance_map)
	_send(msg, pixels)
	return _seq


## Protocol 1.3: what the world takes as guidance ({"buffers", "width", "height", "scales"}, see
## Protocol.guidance_offer), or {} when it takes none (or there is no session).
func guidance_offer() -> Dictionary:
	return Protocol.guidance_offer(welcome)


## Asks the daemon to record this session (it answers record_ok through message_received; the
## welcome's capabilities hold "record" when it can). name is a wish the daemon sanitizes.
func start_recording(name := "") -> void:
	if state == State.RUNNING:
		_send(Protocol.record_start(name))


## Stops recording; record_done (path, frames) comes through message_received once written.
func stop_recording() -> void:
	if state == State.RUNNING and recording:
		_send(Protocol.record_stop())


## Starts a new episode (the daemon answers reset_ok through message_received). prompt (1.2):
## the scene in text from the new episode on ("" = keep the session's); a reconnect's hello
## sends it too.
func reset(seed_value: int, pose: Variant = null, new_prompt := "") -> void:
	if state == State.RUNNING:
		_send(Protocol.reset(seed_value, pose, null, new_prompt))
		# one the daemon refuses (too long) is not kept: a reconnect's hello would be refused too
		if new_prompt != "" and new_prompt.to_utf8_buffer().size() <= Protocol.MAX_PROMPT_BYTES:
			prompt = new_prompt


func ping() -> void:
	if state == State.RUNNING:
		_send(Protocol.ping(clock()))


func _parse_address() -> bool:
	var rest := address.strip_edges().trim_prefix("tcp://")
	var colon := rest.rfind(":")
	if colon <= 0 or not rest.substr(colon + 1).is_valid_int():
		return false
	_host = rest.substr(0, colon).trim_prefix("[").trim_suffix("]")
	if _host == "localhost":
		_host = "127.0.0.1"  # the daemon binds IPv4 loopback; "localhost" may resolve to ::1
	_port = rest.substr(colon + 1).to_int()
	return _port > 0 and _port < 65536


func _open(now: int) -> void:
	_rx = PackedByteArray()
	_tx = PackedByteArray()
	_parts = []
	state = State.CONNECTING
	_deadline_ms = now + HANDSHAKE_TIMEOUT_MS
	var err := _connect_link()
	if err != OK:
		_drop("cannot connect to %s (error %d)" % [address, err], true)


## Closes the connection; with retry (and auto_reconnect) a new one is opened after a backoff.
func _drop(reason: String, retry: bool) -> void:
	var was_connected := state >= State.GREETING
	_close_link()
	_rx = PackedByteArray()
	_tx = PackedByteArray()
	_parts = []
	welcome = {}
	last_error = reason
	if retry and auto_reconnect:
		state = State.WAITING
		_retry_at_ms = Time.get_ticks_msec() + int(_backoff_s * 1000.0)
		_backoff_s = minf(_backoff_s * 2.0, BACKOFF_MAX_S)
	else:
		state = State.STOPPED
	if was_connected:
		disconnected.emit(reason)


## Handles the complete greeting and frames at the start of _rx and drops them from it.
func _parse_received() -> void:
	var pos := 0
	if state == State.GREETING:
		if _rx.size() < Zmtp.GREETING_SIZE:
			return
		if not Zmtp.is_valid_greeting(_rx):
			_drop("%s is not a ZMTP 3 peer with the NULL mechanism" % address, true)
			return
		pos = Zmtp.GREETING_SIZE
		state = State.READY
		_write(Zmtp.ready("DEALER"))
	while state >= State.READY:
		var parsed: Dictionary = Zmtp.parse_frame(_rx, pos, MAX_FRAME_BYTES)
		if parsed.is_empty():
			break
		if parsed.has("error"):
			_drop(str(parsed["error"]), true)
			return
		pos = parsed["next"]
		_on_frame(parsed["flags"], parsed["body"])
	if pos > 0 and state >= State.READY:
		_rx = _rx.slice(pos)


func _on_frame(flags: int, body: PackedByteArray) -> void:
	if flags & Zmtp.FLAG_COMMAND:
		_on_command(Zmtp.command_name(body), Zmtp.command_data(body))
		return
	if state < State.HELLO:
		_drop("message frame before the ZMTP handshake finished", true)
		return
	_parts.append(body)
	if (flags & Zmtp.FLAG_MORE) == 0:
		var frames := _parts
		_parts = []
		_on_message(frames)


func _on_command(command_name: String, data: PackedByteArray) -> void:
	match command_name:
		"READY":
			if state != State.READY:
				_drop("unexpected READY", true)
			elif _socket_type(data) != "ROUTER":
				_drop("the peer at %s is not a ROUTER" % address, false)
			else:
				state = State.HELLO
				_send(_hello())
		"PING":
			_write(Zmtp.pong(data.slice(2)))  # 2-byte TTL, then the context to echo
		"ERROR":
			var reason := ""
			if not data.is_empty():
				reason = data.slice(1, 1 + data[0]).get_string_from_ascii()
			_drop("the daemon closed the connection: %s" % reason, true)


func _socket_type(ready_data: PackedByteArray) -> String:
	var props: Dictionary = Zmtp.parse_properties(ready_data)
	var socket_type := ""
	for key in props:
		if str(key).to_lower() == "socket-type":
			var value: PackedByteArray = props[key]
			socket_type = value.get_string_from_ascii()
	return socket_type


func _on_message(frames: Array) -> void:
	var decoded: Array = Msgpack.decode(frames[0])
	if not decoded[0] or typeof(decoded[1]) != TYPE_DICTIONARY:
		push_warning("WorldBridge: a message from the daemon is not a msgpack map")
		return
	var msg: Dictionary = decoded[1]
	match str(msg.get("type", "")):
		"welcome":
			_on_welcome(msg)
		"frame":
			if state == State.RUNNING:
				_frames_to_credit += 1
				var pixels: PackedByteArray = frames[1] if frames.size() > 1 else PackedByteArray()
				frame_received.emit(msg, pixels)
		"error":
			_on_error(msg)
		"bye":
			_drop("the daemon said bye", true)  # it is shutting down; come back when it is up
		"record_ok", "record_done":
			recording = msg["type"] == "record_ok"
			message_received.emit(msg)
		_:
			message_received.emit(msg)


func _on_welcome(msg: Dictionary) -> void:
	if int(msg.get("major", -1)) != Protocol.MAJOR:
		_drop("the daemon speaks protocol %s.x, this client %d.x" % [msg.get("major"), 1], false)
		return
	welcome = msg
	recording = false  # a new session records nothing until asked
	state = State.RUNNING
	_backoff_s = BACKOFF_MIN_S
	_frames_to_credit = 0
	_deadline_ms = Time.get_ticks_msec() + SILENCE_TIMEOUT_MS
	connected.emit(msg)


func _on_error(msg: Dictionary) -> void:
	var code := int(msg.get("code", 0))
	var error_name := str(msg.get("name", ""))
	error_received.emit(code, error_name, str(msg.get("message", "")))
	if code in FATAL_CODES:
		_drop("%s (%d): %s" % [error_name, code, msg.get("message", "")], false)
	elif code in RETRY_CODES:
		_drop("%s (%d)" % [error_name, code], true)
	elif code in NEW_SESSION_CODES and state == State.RUNNING:
		state = State.HELLO
		_send(_hello())


func _hello() -> Dictionary:
	var extra := {
		"row_order": row_order,
		"credits": credits,
		"capabilities": ["pose"],
		"jpeg_quality": jpeg_quality,
		"seed": episode_seed,
		"token": token,
		"prompt": prompt,
	}
	return Protocol.hello(CLIENT_NAME, engine, width, height, format, extra)


func _max_credits() -> int:
	var limits: Dictionary = welcome.get("limits", {})
	return int(limits.get("max_credits", 16))


func _send(msg: Dictionary, payload: Variant = null) -> void:
	var frames := [Msgpack.encode(msg)]
	if payload != null:
		frames.append(payload)
	_last_message_ms = Time.get_ticks_msec()
	_write(Zmtp.message(frames))


func _write(data: PackedByteArray) -> void:
	_tx.append_array(data)
	_flush()


# The socket. Only these five methods touch the StreamPeerTCP (a test can replace them).


func _connect_link() -> Error:
	_peer = StreamPeerTCP.new()
	return _peer.connect_to_host(_host, _port)


## LINK_CONNECTING, LINK_OPEN or LINK_CLOSED, after letting the socket update its status.
func _link_state() -> int:
	_peer.poll()
	var status := _peer.get_status()
	if status == StreamPeerTCP.STATUS_CONNECTED:
		if state == State.CONNECTING:
			_peer.set_no_delay(true)
		return LINK_OPEN
	return LINK_CONNECTING if status == StreamPeerTCP.STATUS_CONNECTING else LINK_CLOSED


## Appends the bytes that have arrived to _rx; false (and dropped) on a read error.
func _read(now: int) -> bool:
	var available := _peer.get_available_bytes()
	if available <= 0:
		return true
	var got: Array = _peer.get_partial_data(available)
	if got[0] != OK:
		_drop("read from %s failed (error %d)" % [address, got[0]], true)
		return false
	_rx.append_array(got[1])
	if state == State.RUNNING:
		_deadline_ms = now + SILENCE_TIMEOUT_MS
	return true


## Writes what the socket takes now; the rest waits for the next poll.
func _flush() -> void:
	if _peer == null or _tx.is_empty():
		return
	var result: Array = _peer.put_partial_data(_tx)
	if result[0] != OK:
		_drop("write to %s failed (error %d)" % [address, result[0]], true)
		return
	var sent: int = result[1]
	if sent > 0:
		_tx = _tx.slice(sent)
	if _tx.size() > MAX_UNSENT_BYTES:
		_drop("the daemon at %s is not reading" % address, true)


func _close_link() -> void:
	if _peer != null:
		_peer.disconnect_from_host()
	_peer = null
