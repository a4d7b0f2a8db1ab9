// Per-renderer guidance values (protocol 1.3) for GuidanceCapture: the id this renderer has in the ids buffer and,
// optionally, the flat colour it has in the colour buffer (else its material's _Color / _BaseColor). Stored in
// the renderer's MaterialPropertyBlock (merged with what is there), so materials are neither copied nor changed.
using UnityEngine;

namespace WorldBridge
{
    [AddComponentMenu("WorldBridge/Guidance Tag")]
    [RequireComponent(typeof(Renderer))]
    [DisallowMultipleComponent]
    public class GuidanceTag : MonoBehaviour
    {
        [Tooltip("Material or semantic id of this renderer in the ids buffer, from your own table (0 is the sky)")]
        [Range(0, 65535)] public int id = 1;
        [Tooltip("Use Colour in the colour buffer instead of the material's colour")]
        public bool overrideColour = false;
        public Color colour = Color.white;

        static readonly int TagIdId = Shader.PropertyToID("_WorldBridgeId");
        static readonly int TagColourId = Shader.PropertyToID("_WorldBridgeColor");
        static MaterialPropertyBlock _block;

        void OnEnable() { Apply(); }
        void OnValidate() { if (isActiveAndEnabled) Apply(); }
        void OnDisable() { Write(-1f, new Color(0f, 0f, 0f, 0f)); } // back to the capture's defaults

        /// <summary>Write id and colour into the renderer's property block (call after changing them from code).</summary>
        public void Apply()
        {
            var c = colour;
            c.a = 1f; // alpha > 0 marks "this colour" for the shader
            Write(Mathf.Clamp(id, 0, 65535), overrideColour ? c : new Color(0f, 0f, 0f, 0f));
        }

        void Write(float tagId, Color tagColour)
        {
            var r = GetComponent<Renderer>();
            if (r == null) return;
            if (_block == null) _block = new MaterialPropertyBlock();
            r.GetPropertyBlock(_block); // keep what others put there
            _block.SetFloat(TagIdId, tagId);
            _block.SetColor(TagColourId, tagColour);
            r.SetPropertyBlock(_block);
        }
    }
}
