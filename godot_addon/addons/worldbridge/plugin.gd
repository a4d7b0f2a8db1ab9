@tool
extends EditorPlugin
## Registers the WorldBridge node types with the editor while the plugin is enabled.

const TYPES := [
	["WorldModelView", "TextureRect", "world_model_view.gd", "icons/world_model_view.svg"],
]


func _enter_tree() -> void:
	var base_dir: String = get_script().resource_path.get_base_dir()
	for entry in TYPES:
		var type_script: Script = load(base_dir.path_join(entry[2]))
		var icon: Texture2D = load(base_dir.path_join(entry[3]))
		add_custom_type(entry[0], entry[1], type_script, icon)


func _exit_tree() -> void:
	for entry in TYPES:
		remove_custom_type(entry[0])
