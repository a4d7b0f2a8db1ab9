extends Node
## Renders the guidance buffers of a Camera3D (protocol 1.3, docs/protocol.md section 4c) and reads
## them back without stalling the game. WorldModelView makes one when send_guidance is on and the
## world's welcome offers guidance; it calls capture() once per frame and take() for each input.
##
## Rendering: one SubViewport per kind of buffer, each with a World3D of its own and a Camera3D that
## copies the game camera's global_transform, fov, near and far at every capture (keep_aspect
## KEEP_HEIGHT: fov is the vertical field of view, as the input's fov_deg). Every MeshInstance3D of
## the game camera's World3D that the camera can see (visible in the tree, a layer in its
## cull_mask) has a twin in each viewport: the same Mesh at the same global_transform, with
## materials of its own, so nothing of the game's rendering changes.
## - colour: an 8-bit viewport; each surface gets an unshaded StandardMaterial3D of the source
##   material's albedo_color (no textures, no lights, no fog), the background is sky_colour. The
##   readback is sRGB bytes, the colours as the inspector shows them.
## - geometry (depth and ids): an HDR viewport (use_hdr_2d: RGBA16F, linear, not clamped) and an
##   unshaded spatial shader writing R = length(VERTEX) (VERTEX is in view space: the distance
##   from the eye along the pixel's ray, in world units) and G, B = the id's low and high byte as
##   (byte + 0.25) / 255. The background is 0: depth 0 (no surface) and id 0. Needs Forward+ (the
##   Mobile renderer's HDR is 10-bit and clamped).
## Ids: the metadata worldbridge_id (int 1..65535) of the node or of its nearest ancestor that has
## it, else one per Mesh resource, numbered from 1 in the order they are found. The metadata
## worldbridge_colour (Color) overrides the flat colour; worldbridge_guidance = false leaves a node
## (and what is under it) out. Other geometry (CSG, MultiMesh, GridMap) is not captured, and a
## skinned mesh is captured in its rest pose.
##
## Readback: RenderingDevice.texture_get_data_async (Godot 4.4+, a RenderingDevice renderer),
## asked for on the frame after the capture rendered (viewports render at the end of the frame);
## the bytes come back frame_queue_size frames later (project setting
## rendering/rendering_device/vsync/frame_queue_size, 2 by default), on the render thread, and wait
## in a mutex-guarded inbox for the next capture(). Without it (Godot 4.2/4.3, Compatibility):
## ViewportTexture.get_image() on the frame after the capture, which waits for the GPU (a stall).
## Each finished capture keeps the pose and fov it was rendered from: guidance and pose go in the
## same input.
##
## Recording: capture(true) starts the capture of a recorded frame, and take_recorded(id) on the
## next frame reads it with get_image (a stall, as the recorded image's own readback is): it was
## rendered at the end of the same frame as the game viewport's image that goes with it, from the
## same camera pose, so image, pose and guidance are of one frame.

const Protocol := preload("protocol.gd")

const META_ID := "worldbridge_id"
const META_COLOUR := "worldbridge_colour"
const META_INCLUDE := "worldbridge_guidance"
const ID_MAX := 65535
const RESCAN_FRAMES := 30  # new meshes and changed materials are picked up this often
const MAX_IN_FLIGHT := 4  # captures rendered or being read back at once
const STALE_FRAMES := 30  # a readback that has not come back by then is given up
const RENDERING := 0
const READING := 1
const CULL_MODES := {
	BaseMaterial3D.CULL_BACK: "cull_back",
	BaseMaterial3D.CULL_FRONT: "cull_front",
	BaseMaterial3D.CULL_DISABLED: "cull_disabled",
}
const GEOMETRY_SHADER := """shader_type spatial;
render_mode unshaded, shadows_disabled, %s;

// WorldBridge guidance: R = distance from the eye along the pixel's ray, in world units (VERTEX
// is the fragment's position in view space); G, B = the id's low and high byte, (byte + 0.25) /
// 255, so that rounding or truncating to 8 bits gives the byte back.
uniform float wb_id = 0.0;

void fragment() {
	float low = mod(wb_id, 256.0);
	float high = floor(wb_id / 256.0);
	ALBEDO = vec3(length(VERTEX), (low + 0.25) / 255.0, (high + 0.25) / 255.0);
}
"""

## The game camera being captured (null: stopped).
var camera: Camera3D
## Size of every buffer.
var size := Vector2i.ZERO
## The buffers to send, names of Protocol.GUIDANCE_BUFFERS.
var buffers: Array = []
## "f16" or "f32" (the GPU renders depth in half precision either way).
var depth_format := "f16"
## Flat colour where no surface is seen (the maze's sky colour by default).
var sky_colour := Color8(120, 180, 240)
## pose_map() and fov of the newest finished capture (null before the first).
var pose: Variant = null
var fov_deg: Variant = null

var _colour_view: SubViewport
var _geometry_view: SubViewport
var _async := false
var _twins := {}  # source instance id -> {"mesh", "colour": MeshInstance3D, "geometry": ...}
var _mesh_ids := {}
var _next_id := 1
var _colour_materials := {}
var _geometry_materials := {}
var _shaders := {}
var _pending := []
var _finished := {}
var _finished_id := 0
var _finished_msec := 0
var _next_capture := 0
var _rescan_in := 0
var _inbox := []
var _inbox_lock := Mutex.new()
var _warned := false


## "" when this renderer can capture `wanted`, else why it cannot.
static func unsupported_reason(wanted: Array) -> String:
	if DisplayServer.get_name() == "headless":
		return "nothing is rendered in headless mode"
	var method := rendering_method()
	if ("depth" in wanted or "ids" in wanted) and method != "forward_plus":
		return "depth and ids need the Forward+ renderer (this project runs %s)" % method
	return ""


## "forward_plus", "mobile" or "gl_compatibility".
static func rendering_method() -> String:
	if RenderingServer.has_method("get_current_rendering_method"):
		return str(RenderingServer.call("get_current_rendering_method"))
	return str(ProjectSettings.get_setting("rendering/renderer/rendering_method", "forward_plus"))


## The guidance map of one capture, top row first. colour: an Image of the colour view (RGBA8 or
## RGB8; converted in place); geometry: an Image of the geometry view (RGBAH: R depth, G and B the
## id's low and high byte as (byte + 0.25) / 255; RGBH, RGBF and RGBAF are converted); either may
## be null when `wanted` does not need it. {} when a buffer `wanted` names cannot be made.
static func buffers_map(
	colour: Image, geometry: Image, wanted: Array, depth_encoding := "f16"
) -> Dictionary:
	var w := 0
	var h := 0
	var colour_data: Variant = null
	var depth_data: Variant = null
	var ids_data: Variant = null
	if "colour" in wanted:
		if colour == null or colour.is_empty():
			return {}
		if colour.get_format() != Image.FORMAT_RGB8:
			colour.convert(Image.FORMAT_RGB8)
		colour_data = colour.get_data()
		w = colour.get_width()
		h = colour.get_height()
	if "depth" in wanted or "ids" in wanted:
		if geometry == null or geometry.is_empty():
			return {}
		var float_formats := [Image.FORMAT_RGBH, Image.FORMAT_RGBF, Image.FORMAT_RGBAF]
		if geometry.get_format() in float_formats:
			geometry.convert(Image.FORMAT_RGBAH)  # get_image of an opaque HDR viewport is RGBH
		if geometry.get_format() != Image.FORMAT_RGBAH:
			return {}  # an 8-bit target holds no distances
		if w > 0 and geometry.get_size() != Vector2i(w, h):
			return {}
		w = geometry.get_width()
		h = geometry.get_height()
		var raw := geometry.get_data()
		if "depth" in wanted:
			var depth := Image.create_from_data(w, h, false, Image.FORMAT_RGBAH, raw)
			depth.convert(Image.FORMAT_RH if depth_encoding == "f16" else Image.FORMAT_RF)
			depth_data = depth.get_data()
		if "ids" in wanted:
			# Without the first pixel's R every pixel starts at its G: RG8 then takes G and B, the
			# low and high byte, which is the uint16 little-endian the protocol wants.
			var shifted := raw.slice(2)
			shifted.append_array(PackedByteArray([0, 0]))
			var ids := Image.create_from_data(w, h, false, Image.FORMAT_RGBAH, shifted)
			ids.convert(Image.FORMAT_RG8)
			ids_data = ids.get_data()
	if w == 0:
		return {}
	return Protocol.guidance(w, h, colour_data, depth_data, ids_data, depth_encoding, "top_down")


## The flat colour of a material: a BaseMaterial3D's albedo_color, a ShaderMaterial's albedo /
## albedo_color / color / colour parameter, Godot's default grey without a material, else a colour
## made from the material (the same for the same material).
static func flat_colour(material: Material) -> Color:
	if material == null:
		return Color(0.8, 0.8, 0.8)
	if material is BaseMaterial3D:
		return (material as BaseMaterial3D).albedo_color
	if material is ShaderMaterial:
		for parameter in ["albedo", "albedo_color", "color", "colour"]:
			var value: Variant = (material as ShaderMaterial).get_shader_parameter(parameter)
			if value is Color:
				return value
	var key := material.resource_path
	if key == "":
		key = str(material.get_instance_id())
	return Color.from_hsv(float(absi(hash(key)) % 360) / 360.0, 0.5, 0.8)


static func _inherited_meta(node: Node, key: String, fallback: Variant) -> Variant:
	var at := node
	while at != null:
		if at.has_meta(key):
			return at.get_meta(key)
		at = at.get_parent()
	return fallback


static func _cull(material: Material) -> int:
	if material is BaseMaterial3D:
		return (material as BaseMaterial3D).cull_mode
	return BaseMaterial3D.CULL_BACK


## Starts capturing `wanted` buffers of game_camera at buffer_size (one of the offer's sizes).
func start(
	game_camera: Camera3D, buffer_size: Vector2i, wanted: Array, depth_encoding := "f16"
) -> void:
	stop()
	camera = game_camera
	size = buffer_size
	buffers = wanted.duplicate()
	depth_format = depth_encoding
	var rd := RenderingServer.get_rendering_device()
	_async = (
		rd != null
		and rd.has_method("texture_get_data_async")
		and RenderingServer.has_method("call_on_render_thread")
	)
	if "colour" in buffers:
		_colour_view = _make_view(false, sky_colour)
	if "depth" in buffers or "ids" in buffers:
		_geometry_view = _make_view(true, Color(0.0, 0.0, 0.0))
	_rescan_in = 0


## Stops capturing and frees the viewports and twins.
func stop() -> void:
	for view in _views():
		view.queue_free()
	_colour_view = null
	_geometry_view = null
	camera = null
	_twins.clear()
	_pending.clear()
	_finished = {}
	pose = null
	fov_deg = null


func is_capturing() -> bool:
	return camera != null and not _views().is_empty()


## True when the readback is asynchronous (texture_get_data_async), false when get_image stalls.
func is_async() -> bool:
	return _async


## Milliseconds since the newest capture finished (a large number before the first).
func pose_age_ms() -> int:
	return Time.get_ticks_msec() - _finished_msec if pose != null else 1 << 30


## The newest finished capture not taken yet, {"guidance": a Protocol.guidance() map, "pose": the
## pose_map() it was rendered from, "fov_deg": its fov}; {} when there is none.
func take() -> Dictionary:
	var out := _finished
	_finished = {}
	return out


## Call once per frame: takes the readbacks that came back, asks for those of the captures that
## rendered on an earlier frame, and starts a new capture (rendered at the end of this frame).
## Returns the new capture's id, 0 when none started. for_record: the capture of a recorded frame,
## started even when MAX_IN_FLIGHT are in flight and kept for take_recorded (not read back here).
func capture(for_record := false) -> int:
	if not is_capturing() or not is_instance_valid(camera) or not camera.is_inside_tree():
		return 0
	_drain_inbox()
	var frame := Engine.get_process_frames()
	for job in _pending.duplicate():
		if job["state"] == RENDERING and frame > job["frame"] and not job["record"]:
			_read(job)
		elif frame - int(job["frame"]) > STALE_FRAMES:
			_pending.erase(job)
	if _pending.size() >= MAX_IN_FLIGHT and not for_record:
		return 0
	_sync_twins()
	var xform := camera.global_transform.orthonormalized()
	for view in _views():
		var eye: Camera3D = view.get_camera_3d()
		eye.global_transform = xform
		eye.fov = camera.fov
		eye.near = camera.near
		eye.far = camera.far
		view.render_target_update_mode = SubViewport.UPDATE_ONCE
	_next_capture += 1
	_pending.append(
		{
			"id": _next_capture,
			"state": RENDERING,
			"frame": frame,
			"pose": Protocol.pose_from_transform(camera.global_transform),
			"fov_deg": clampf(camera.fov, 1.0, 170.0),
			"record": for_record,
		}
	)
	return _next_capture


## The capture `id` of a capture(true) made on the previous frame, read now with get_image (it
## waits for the GPU): {"guidance", "pose", "fov_deg"} as take() has them. Call it on the frame
## right after that capture and before this frame's capture() (the viewports still hold its
## render then); {} when that is not so or the capture is unreadable. It is newer than every
## capture still being read back: those are dropped, and take() hands out only later ones.
func take_recorded(id: int) -> Dictionary:
	var job := {}
	for pending in _pending:
		if pending["id"] == id:
			job = pending
	if job.is_empty():
		return {}
	_pending.erase(job)
	if Engine.get_process_frames() != int(job["frame"]) + 1 or not is_capturing():
		return {}
	var colour: Image = _colour_view.get_texture().get_image() if _colour_view != null else null
	var geometry: Image = (
		_geometry_view.get_texture().get_image() if _geometry_view != null else null
	)
	var map := buffers_map(colour, geometry, buffers, depth_format)
	if map.is_empty():
		if not _warned:
			push_warning("WorldBridge: a recorded frame's guidance was unreadable")
			_warned = true
		return {}
	_finished = {}
	_finished_id = maxi(_finished_id, id)
	_finished_msec = Time.get_ticks_msec()
	pose = job["pose"]
	fov_deg = job["fov_deg"]
	return {"guidance": map, "pose": job["pose"], "fov_deg": job["fov_deg"]}


## Called by the readback, on the render thread: the bytes wait for the main thread.
func receive(id: int, part: String, data: PackedByteArray) -> void:
	_inbox_lock.lock()
	_inbox.append([id, part, data])
	_inbox_lock.unlock()


func _views() -> Array:
	var views := []
	for view in [_colour_view, _geometry_view]:
		if view != null:
			views.append(view)
	return views


func _make_view(hdr: bool, background: Color) -> SubViewport:
	var view := SubViewport.new()
	view.size = size
	view.world_3d = World3D.new()
	view.use_hdr_2d = hdr
	view.transparent_bg = false
	view.msaa_3d = Viewport.MSAA_DISABLED
	view.screen_space_aa = Viewport.SCREEN_SPACE_AA_DISABLED
	view.use_taa = false
	view.use_debanding = false
	view.mesh_lod_threshold = 0.0
	view.positional_shadow_atlas_size = 0
	view.audio_listener_enable_3d = false
	view.gui_disable_input = true
	view.render_target_clear_mode = SubViewport.CLEAR_MODE_ALWAYS
	view.render_target_update_mode = SubViewport.UPDATE_DISABLED
	var environment := Environment.new()
	environment.background_mode = Environment.BG_COLOR
	environment.background_color = background
	environment.tonemap_mode = Environment.TONE_MAPPER_LINEAR
	environment.tonemap_exposure = 1.0
	view.world_3d.environment = environment
	var eye := Camera3D.new()
	eye.keep_aspect = Camera3D.KEEP_HEIGHT
	view.add_child(eye)
	add_child(view)
	eye.current = true
	return view


func _read(job: Dictionary) -> void:
	job["state"] = READING
	if _colour_view != null:
		_fetch(job["id"], "colour", _colour_view)
	if _geometry_view != null:
		_fetch(job["id"], "geometry", _geometry_view)


func _fetch(id: int, part: String, view: SubViewport) -> void:
	if not _async:
		_store(id, part, view.get_texture().get_image())
		return
	var viewport_texture := RenderingServer.viewport_get_texture(view.get_viewport_rid())
	var texture := RenderingServer.texture_get_rd_texture(viewport_texture)
	var target := weakref(self)
	var on_data := func(data: PackedByteArray) -> void:
		var me: Variant = target.get_ref()
		if me != null:
			me.receive(id, part, data)
	var request := func() -> void:
		var rd := RenderingServer.get_rendering_device()
		rd.call("texture_get_data_async", texture, 0, on_data)
	RenderingServer.call("call_on_render_thread", request)


func _drain_inbox() -> void:
	_inbox_lock.lock()
	var arrived := _inbox
	_inbox = []
	_inbox_lock.unlock()
	for item in arrived:
		var part: String = item[1]
		var data: PackedByteArray = item[2]
		var per_pixel := 8 if part == "geometry" else 4
		if data.size() != size.x * size.y * per_pixel:
			if not _warned:
				var want := "%dx%dx%d" % [size.x, size.y, per_pixel]
				push_warning(
					"WorldBridge: a guidance readback of %d bytes, not %s; now using get_image"
					% [data.size(), want]
				)
				_warned = true
			_async = false
			continue
		var image_format := Image.FORMAT_RGBAH if part == "geometry" else Image.FORMAT_RGBA8
		_store(item[0], part, Image.create_from_data(size.x, size.y, false, image_format, data))


func _store(id: int, part: String, image: Image) -> void:
	var job := {}
	for pending in _pending:
		if pending["id"] == id:
			job = pending
	if job.is_empty() or image == null:
		return
	job[part] = image
	var complete := (
		job.has("colour") == (_colour_view != null)
		and job.has("geometry") == (_geometry_view != null)
	)
	if complete:
		_pending.erase(job)
		if id < _finished_id:
			return  # a newer capture finished first
		var map := buffers_map(job.get("colour"), job.get("geometry"), buffers, depth_format)
		if map.is_empty():
			if not _warned:
				push_warning("WorldBridge: a guidance capture was unreadable (guidance_capture.gd)")
				_warned = true
			return
		_finished = {"guidance": map, "pose": job["pose"], "fov_deg": job["fov_deg"]}
		_finished_id = id
		_finished_msec = Time.get_ticks_msec()
		pose = job["pose"]
		fov_deg = job["fov_deg"]


## Twins follow their sources; new meshes (and material changes) are picked up every RESCAN_FRAMES.
func _sync_twins() -> void:
	_rescan_in -= 1
	if _rescan_in <= 0:
		_rescan_in = RESCAN_FRAMES
		_scan()
	var world := camera.get_world_3d()
	for key in _twins.keys():
		var twin: Dictionary = _twins[key]
		var source := instance_from_id(key) as MeshInstance3D
		if source == null or source.mesh != twin["mesh"]:
			_drop_twin(key)
			if source != null and source.mesh != null:
				_add_twin(source)
			continue
		var shown := (
			source.is_visible_in_tree()
			and (source.layers & camera.cull_mask) != 0
			and source.get_world_3d() == world
		)
		var xform := source.global_transform
		for part in ["colour", "geometry"]:
			var node: MeshInstance3D = twin.get(part)
			if node != null:
				node.visible = shown
				if shown:
					node.global_transform = xform


func _scan() -> void:
	var world := camera.get_world_3d()
	for node in get_tree().root.find_children("*", "MeshInstance3D", true, false):
		var source := node as MeshInstance3D
		if source.mesh == null or source.get_world_3d() != world:
			continue  # also skips the twins: they live in the viewports' own worlds
		var key := source.get_instance_id()
		if not bool(_inherited_meta(source, META_INCLUDE, true)):
			if _twins.has(key):
				_drop_twin(key)
		elif _twins.has(key):
			_paint(_twins[key], source)
		else:
			_add_twin(source)


func _add_twin(source: MeshInstance3D) -> void:
	var twin := {"mesh": source.mesh, "colour": null, "geometry": null}
	for part in ["colour", "geometry"]:
		var view: SubViewport = _colour_view if part == "colour" else _geometry_view
		if view == null:
			continue
		var node := MeshInstance3D.new()
		node.mesh = source.mesh
		node.cast_shadow = GeometryInstance3D.SHADOW_CASTING_SETTING_OFF
		node.visible = false
		view.add_child(node)
		twin[part] = node
	_paint(twin, source)
	_twins[source.get_instance_id()] = twin


func _drop_twin(key: int) -> void:
	var twin: Dictionary = _twins[key]
	for part in ["colour", "geometry"]:
		var node: Variant = twin.get(part)
		if node != null and is_instance_valid(node):
			node.queue_free()
	_twins.erase(key)


func _paint(twin: Dictionary, source: MeshInstance3D) -> void:
	var colour_node: MeshInstance3D = twin.get("colour")
	if colour_node != null:
		var override: Variant = _inherited_meta(source, META_COLOUR, null)
		for i in source.mesh.get_surface_count():
			var material := source.get_active_material(i)
			var flat: Color = override if override is Color else flat_colour(material)
			colour_node.set_surface_override_material(i, _colour_material(flat, _cull(material)))
	var geometry_node: MeshInstance3D = twin.get("geometry")
	if geometry_node != null:
		var cull := _cull(source.get_active_material(0))
		geometry_node.material_override = _geometry_material(_id_of(source), cull)


func _id_of(source: MeshInstance3D) -> int:
	var explicit: Variant = _inherited_meta(source, META_ID, null)
	if typeof(explicit) == TYPE_INT:
		return clampi(explicit, 0, ID_MAX)
	if not _mesh_ids.has(source.mesh):
		_mesh_ids[source.mesh] = _next_id
		_next_id = mini(_next_id + 1, ID_MAX)
	return _mesh_ids[source.mesh]


func _colour_material(colour: Color, cull: int) -> StandardMaterial3D:
	var key := "%s %d" % [colour.to_html(false), cull]
	if not _colour_materials.has(key):
		var material := StandardMaterial3D.new()
		material.shading_mode = BaseMaterial3D.SHADING_MODE_UNSHADED
		material.albedo_color = Color(colour, 1.0)
		material.cull_mode = cull as BaseMaterial3D.CullMode
		_colour_materials[key] = material
	return _colour_materials[key]


func _geometry_material(id: int, cull: int) -> ShaderMaterial:
	var key := "%d %d" % [id, cull]
	if not _geometry_materials.has(key):
		if not _shaders.has(cull):
			var shader := Shader.new()
			shader.code = GEOMETRY_SHADER % CULL_MODES.get(cull, "cull_back")
			_shaders[cull] = shader
		var material := ShaderMaterial.new()
		material.shader = _shaders[cull]
		material.set_shader_parameter("wb_id", float(id))
		_geometry_materials[key] = material
	return _geometry_materials[key]
