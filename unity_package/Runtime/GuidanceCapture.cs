// Protocol 1.3 guidance (docs/protocol.md section 4c) rendered from a camera: a hidden copy of the camera draws the
// scene with the replacement shader Hidden/WorldBridge/Guidance (Runtime/Shaders/WorldBridgeGuidance.shader) into
// small RenderTextures, one per buffer, and AsyncGPUReadback brings them back without ever stalling the main
// thread. TryTakeGuidance hands over the newest completed capture (older ones are dropped) for the next input;
// LastPose and LastFovDeg then hold the camera it was rendered from, which that input must carry (protocol 4c).
// CaptureNow renders and reads back at once (the main thread waits for the GPU): for a recorded frame, whose image
// WorldModelView grabs the same way in the same Update, so the image, its pose and its guidance are of one frame.
//
//   colour  flat, unlit colour per material (_Color, or _BaseColor), or a GuidanceTag's colour; sky: skyColour
//   depth   length(worldPos - _WorldSpaceCameraPos): distance along the pixel's ray in world units; sky: 0
//   ids     a GuidanceTag's id, else defaultId, as uint16; sky: 0
//
// Built-in render pipeline (Camera.RenderWithShader; URP/HDRP ignore replacement shaders). Rows come back bottom
// row first, as Unity's texture data is: the guidance is sent with row_order bottom_up.
using System;
using System.Collections.Generic;
using UnityEngine;
using AsyncGPUReadback = UnityEngine.Rendering.AsyncGPUReadback;
using AsyncGPUReadbackRequest = UnityEngine.Rendering.AsyncGPUReadbackRequest;
using WorldBridge.Core;

namespace WorldBridge
{
    [AddComponentMenu("WorldBridge/Guidance Capture")]
    [DisallowMultipleComponent]
    public class GuidanceCapture : MonoBehaviour
    {
        [Tooltip("Camera whose guidance is rendered; Camera.main when empty (WorldModelView sets its target camera)")]
        public Camera sourceCamera;
        [Tooltip("1: the world's full guidance size; 2, 4, ...: that fraction of it (the nearest one the world lists)")]
        [Min(1)] public int scale = 1;
        [Tooltip("Encoding of the depth buffer: F16 (half the bytes, ~3 significant digits) or F32")]
        public GuidanceDepthFormat depthFormat = GuidanceDepthFormat.F16;
        [Tooltip("Colour buffer where nothing is drawn (the sky); depth and ids are 0 there")]
        public Color skyColour = Color.black;
        [Tooltip("Colour of materials that have neither _Color nor _BaseColor (a GuidanceTag can set one)")]
        public Color defaultColour = Color.grey;
        [Tooltip("Id of renderers without a GuidanceTag (0 is the sky)")]
        [Range(0, 65535)] public int defaultId = 1;
        [Tooltip("Captures per second at most (each is three small renders and read-backs)")]
        [Range(1, 120)] public float maxCaptureHz = 30f;
        [Tooltip("Captures whose read-backs may be in flight at once; when all are, frames are skipped")]
        [Range(1, 8)] public int maxInFlight = 3;
        [Tooltip("The replacement shader; Hidden/WorldBridge/Guidance when empty (add it to Always Included Shaders " +
                 "for player builds if nothing references it)")]
        public Shader guidanceShader;

        public const string ShaderName = "Hidden/WorldBridge/Guidance";
        const float AbandonAfterS = 2f; // a read-back that never called back (device lost) frees its slot

        static readonly int ModeId = Shader.PropertyToID("_WorldBridgeGuidanceMode");
        static readonly int TagIdId = Shader.PropertyToID("_WorldBridgeId");
        static readonly int DefaultIdId = Shader.PropertyToID("_WorldBridgeDefaultId");
        static readonly int TagColourId = Shader.PropertyToID("_WorldBridgeColor");
        static readonly int ColorId = Shader.PropertyToID("_Color");
        static readonly int BaseColorId = Shader.PropertyToID("_BaseColor");

        enum Buffer { Colour = 0, Depth = 1, Ids = 2 }

        sealed class Capture
        {
            public long Id;
            public int Generation;
            public float StartedAt;
            public int Pending;
            public bool Failed;
            public bool DepthHalf; // the depth target was RHalf when this was rendered
            public CameraPose Pose;
            public float FovDeg; // the source camera's vertical field of view when this was rendered
            public Guidance Guidance;
        }

        Camera _camera; // hidden, disabled: renders only when told to
        RenderTexture _colourRt, _depthRt, _idsRt;
        bool _depthRtIsHalf;
        byte[] _scratch = new byte[0];
        readonly List<Capture> _inFlight = new List<Capture>();
        Capture _ready;
        long _nextId, _newestId;
        int _generation;
        float _lastCapture = float.NegativeInfinity;
        bool _warned;

        int _width, _height;
        bool _colour, _depth, _ids;

        /// <summary>Whether Configure was called (and Stop not since): the component is capturing.</summary>
        public bool IsConfigured { get { return _width > 0; } }
        public int Width { get { return _width; } }
        public int Height { get { return _height; } }
        /// <summary>Captures started, completed (all read-backs arrived), dropped (a newer one was ready first, or
        /// taken by nobody), failed (a read-back error or none within 2 s), skipped (all slots in flight).</summary>
        public long Captured { get; private set; }
        public long Completed { get; private set; }
        public long Dropped { get; private set; }
        public long Failed { get; private set; }
        public long Skipped { get; private set; }
        /// <summary>The camera pose the guidance TryTakeGuidance (or CaptureNow) handed out last was rendered from.</summary>
        public CameraPose LastPose { get; private set; }
        /// <summary>The vertical field of view (degrees) of the camera that guidance was rendered from.</summary>
        public float LastFovDeg { get; private set; }
        /// <summary>No captures of its own in LateUpdate, only CaptureNow's (WorldModelView sets it while it
        /// records: each recorded frame renders its own guidance, so the periodic ones would go unused).</summary>
        public bool OnDemandOnly { get; set; }

        /// <summary>Capture these buffers at width x height (each at least 1). Forgets captures of an earlier size.</summary>
        public void Configure(int width, int height, bool colour, bool depth, bool ids)
        {
            if (width < 1 || height < 1) throw new ArgumentException("guidance size must be at least 1x1, got " + width + "x" + height);
            if (!colour && !depth && !ids) throw new ArgumentException("capture at least one guidance buffer");
            if (width != _width || height != _height || colour != _colour || depth != _depth || ids != _ids) ReleaseTargets();
            _width = width; _height = height; _colour = colour; _depth = depth; _ids = ids;
            _generation++;
            _ready = null;
        }

        /// <summary>Capture what a guided world's welcome offers: the buffers it reads, at `scale` (or the listed
        /// fraction nearest to it). Returns false (and stops) when the offer lists no usable size.</summary>
        public bool ConfigureFor(GuidanceOffer offer)
        {
            int s = offer != null ? offer.NearestScale(Mathf.Max(1, scale)) : 0;
            if (s == 0) { Stop(); return false; }
            int w, h;
            offer.SizeAt(s, out w, out h);
            bool colour = offer.Reads(Guidance.ColourBuffer), depth = offer.Reads(Guidance.DepthBuffer), ids = offer.Reads(Guidance.IdsBuffer);
            if (!colour && !depth && !ids) { Stop(); return false; }
            Configure(w, h, colour, depth, ids);
            return true;
        }

        /// <summary>Stop capturing; read-backs in flight are dropped when they arrive.</summary>
        public void Stop()
        {
            _width = _height = 0;
            _generation++;
            _ready = null;
        }

        /// <summary>The newest completed guidance not taken yet (bottom_up rows, sized as configured), for the next
        /// input; older completed ones were dropped. The Guidance is new each time and now the caller's.</summary>
        public bool TryTakeGuidance(out Guidance guidance)
        {
            var r = _ready;
            _ready = null;
            if (r == null) { guidance = null; return false; }
            guidance = r.Guidance;
            LastPose = r.Pose;
            LastFovDeg = r.FovDeg;
            return true;
        }

        /// <summary>Render the guidance of `source` as it is at this moment and read it back before returning: the
        /// main thread waits for the GPU, as a recorded frame's own ReadPixels does. WorldModelView calls it for
        /// each recorded frame right before it grabs that frame's image from the same camera, in the same Update,
        /// so image, pose and guidance show one moment of the scene (never a read-back 1-3 frames behind). The
        /// result is newer than every capture in flight: those are dropped, TryTakeGuidance hands out only later
        /// ones. False (guidance null) when nothing can be captured (not configured, disabled, no shader or no
        /// AsyncGPUReadback, a read-back error); the Guidance is new and now the caller's.</summary>
        public bool CaptureNow(Camera source, out Guidance guidance)
        {
            guidance = null;
            if (!IsConfigured || source == null || !isActiveAndEnabled) return false;
            var shader = UsableShader();
            if (shader == null) return false;
            _lastCapture = Time.unscaledTime;
            var capture = Render(source, shader, true);
            if (capture.Failed) { Failed++; return false; }
            Completed++;
            if (_ready != null) Dropped++; // nobody took the older one
            _ready = null;
            _newestId = capture.Id;
            LastPose = capture.Pose;
            LastFovDeg = capture.FovDeg;
            guidance = capture.Guidance;
            return true;
        }

        void LateUpdate()
        {
            AbandonStale();
            if (!IsConfigured || OnDemandOnly) return;
            if (Time.unscaledTime - _lastCapture < 1f / Mathf.Max(1f, maxCaptureHz)) return;
            var source = sourceCamera != null ? sourceCamera : Camera.main;
            if (source == null) return;
            if (_inFlight.Count >= maxInFlight) { Skipped++; return; }
            var shader = UsableShader();
            if (shader == null) return;
            _lastCapture = Time.unscaledTime;
            Render(source, shader, false);
        }

        // The replacement shader, or null (and a warning, once) when guidance cannot be captured here.
        Shader UsableShader()
        {
            if (!SystemInfo.supportsAsyncGPUReadback)
            {
                WarnOnce("this platform has no AsyncGPUReadback: no guidance is captured");
                return null;
            }
            var shader = guidanceShader != null ? guidanceShader : (guidanceShader = Shader.Find(ShaderName));
            if (shader == null || !shader.isSupported)
            {
                WarnOnce("shader " + ShaderName + " is " + (shader == null ? "not in this build (add it to Always Included Shaders or assign Guidance Shader)" : "not supported here") + ": no guidance is captured");
                return null;
            }
            return shader;
        }

        // wait: read each buffer back before returning (CaptureNow), else asynchronously (the capture goes in flight).
        Capture Render(Camera source, Shader shader, bool wait)
        {
            EnsureTargets();
            if (_camera == null)
            {
                var go = new GameObject("WorldBridge guidance camera");
                go.hideFlags = HideFlags.HideAndDontSave;
                _camera = go.AddComponent<Camera>();
                _camera.enabled = false;
            }
            _camera.CopyFrom(source); // settings, transform, culling mask; then what the guidance needs instead
            _camera.rect = new Rect(0f, 0f, 1f, 1f);
            _camera.clearFlags = CameraClearFlags.SolidColor;
            _camera.allowMSAA = false;
            _camera.allowHDR = false;
            _camera.renderingPath = RenderingPath.Forward; // the shader's one pass, unlit; no deferred G-buffer
            _camera.depthTextureMode = DepthTextureMode.None;
            _camera.aspect = (float)_width / _height; // the world's frame aspect, whatever the screen's

            var t = source.transform;
            Vector3 p = t.position;
            Quaternion q = t.rotation;
            var capture = new Capture
            {
                Id = ++_nextId, Generation = _generation, StartedAt = Time.unscaledTime,
                Pose = new CameraPose(p.x, p.y, p.z, q.x, q.y, q.z, q.w), FovDeg = source.fieldOfView,
                DepthHalf = _depthRtIsHalf,
                Guidance = new Guidance
                {
                    Width = _width, Height = _height, RowOrder = RowOrder.BottomUp,
                    DepthFormat = _depthRtIsHalf ? GuidanceDepthFormat.F16 : depthFormat,
                },
            };

            // Globals seen by materials that lack these properties; _Color and _BaseColor are restored afterwards
            // (other shaders may use them), as raw vectors so no colour-space conversion touches them.
            Vector4 oldColor = Shader.GetGlobalVector(ColorId), oldBase = Shader.GetGlobalVector(BaseColorId);
            Shader.SetGlobalColor(ColorId, defaultColour); // converted to linear in linear projects, as material colours are
            Shader.SetGlobalVector(BaseColorId, new Vector4(0f, 0f, 0f, -1f)); // alpha < 0: "no _BaseColor", use _Color
            Shader.SetGlobalVector(TagColourId, new Vector4(0f, 0f, 0f, 0f));  // renderers without a GuidanceTag
            Shader.SetGlobalFloat(TagIdId, -1f);
            Shader.SetGlobalFloat(DefaultIdId, defaultId);
            try
            {
                if (_colour) RenderOne(capture, Buffer.Colour, _colourRt, skyColour, shader, TextureFormat.RGBA32, wait);
                if (_depth) RenderOne(capture, Buffer.Depth, _depthRt, new Color(0f, 0f, 0f, 0f), shader, _depthRtIsHalf ? TextureFormat.RHalf : TextureFormat.RFloat, wait);
                if (_ids) RenderOne(capture, Buffer.Ids, _idsRt, new Color(0f, 0f, 0f, 0f), shader, TextureFormat.RGBA32, wait);
            }
            finally
            {
                _camera.targetTexture = null;
                Shader.SetGlobalVector(ColorId, oldColor);
                Shader.SetGlobalVector(BaseColorId, oldBase);
            }
            Captured++;
            if (capture.Pending > 0) _inFlight.Add(capture);
            return capture;
        }

        void RenderOne(Capture capture, Buffer buffer, RenderTexture rt, Color clear, Shader shader, TextureFormat readFormat, bool wait)
        {
            Shader.SetGlobalFloat(ModeId, (float)(int)buffer);
            _camera.backgroundColor = clear;
            _camera.targetTexture = rt;
            _camera.RenderWithShader(shader, ""); // "": every renderer the camera sees, with its material's values
            if (wait)
            {
                var done = AsyncGPUReadback.Request(rt, 0, readFormat);
                done.WaitForCompletion(); // blocks until the GPU has rendered and copied it
                if (done.hasError) capture.Failed = true;
                else TryStore(capture, buffer, done);
                return;
            }
            capture.Pending++;
            // The copy is queued on the GPU now, so the texture may be drawn into again next frame.
            AsyncGPUReadback.Request(rt, 0, readFormat, request => OnReadback(capture, buffer, request));
        }

        // Called on the main thread when a read-back is done; its data is valid only during this call.
        void OnReadback(Capture capture, Buffer buffer, AsyncGPUReadbackRequest request)
        {
            if (this == null || capture.Pending <= 0) return; // destroyed, or abandoned as stale
            if (request.hasError) capture.Failed = true;
            else TryStore(capture, buffer, request);
            if (--capture.Pending > 0) return;
            _inFlight.Remove(capture);
            if (capture.Failed) { Failed++; return; }
            Completed++;
            if (capture.Generation != _generation || capture.Id < _newestId) { Dropped++; return; } // stale
            if (_ready != null) Dropped++; // nobody took the older one
            _newestId = capture.Id;
            _ready = capture;
        }

        void TryStore(Capture capture, Buffer buffer, AsyncGPUReadbackRequest request)
        {
            try { Store(capture, buffer, request); }
            catch (Exception e)
            {
                capture.Failed = true;
                WarnOnce("guidance read-back of " + buffer + " failed: " + e.Message);
            }
        }

        void Store(Capture capture, Buffer buffer, AsyncGPUReadbackRequest request)
        {
            var g = capture.Guidance;
            int pixels = g.Width * g.Height;
            var data = request.GetData<byte>();
            if (buffer == Buffer.Depth && !capture.DepthHalf && g.DepthFormat == GuidanceDepthFormat.F32)
            {
                Expect(data.Length, pixels * 4, buffer);
                g.Depth = new byte[pixels * 4];
                data.CopyTo(g.Depth);
                ZeroNaNs(g.Depth);
                return;
            }
            if (buffer == Buffer.Depth && capture.DepthHalf)
            {
                Expect(data.Length, pixels * 2, buffer);
                g.Depth = new byte[pixels * 2];
                data.CopyTo(g.Depth);
                ZeroHalfNaNs(g.Depth);
                return;
            }
            int bytes = pixels * 4; // RGBA32 for colour and ids; RFloat for depth sent as f16
            Expect(data.Length, bytes, buffer);
            if (_scratch.Length != bytes) _scratch = new byte[bytes];
            data.CopyTo(_scratch);
            var s = _scratch;
            switch (buffer)
            {
                case Buffer.Colour:
                {
                    var rgb = new byte[pixels * 3];
                    for (int i = 0, j = 0; i < pixels; i++, j += 4) { rgb[3 * i] = s[j]; rgb[3 * i + 1] = s[j + 1]; rgb[3 * i + 2] = s[j + 2]; }
                    g.Colour = rgb;
                    break;
                }
                case Buffer.Ids:
                {
                    var ids = new byte[pixels * 2];
                    for (int i = 0, j = 0; i < pixels; i++, j += 4) { ids[2 * i] = s[j]; ids[2 * i + 1] = s[j + 1]; } // r = low byte, g = high
                    g.Ids = ids;
                    break;
                }
                case Buffer.Depth: // an RFloat target sent as f16 (this GPU renders no RHalf)
                {
                    var half = new byte[pixels * 2];
                    for (int i = 0; i < pixels; i++)
                    {
                        float d = BitConverter.ToSingle(s, 4 * i);
                        ushort h = Guidance.HalfFromFloat(float.IsNaN(d) ? 0f : d);
                        half[2 * i] = (byte)h; half[2 * i + 1] = (byte)(h >> 8);
                    }
                    g.Depth = half;
                    break;
                }
            }
        }

        static void Expect(int got, int expected, Buffer buffer)
        {
            if (got != expected) throw new InvalidOperationException(buffer + " read back " + got + " bytes, expected " + expected);
        }

        // The daemon refuses NaN depth (the whole input): make it "no surface" instead. Little-endian floats.
        static void ZeroNaNs(byte[] d)
        {
            for (int i = 0; i + 3 < d.Length; i += 4)
                if ((d[i + 3] & 0x7f) == 0x7f && (d[i + 2] & 0x80) != 0 && ((d[i + 2] & 0x7f) != 0 || d[i + 1] != 0 || d[i] != 0))
                    d[i] = d[i + 1] = d[i + 2] = d[i + 3] = 0;
        }

        static void ZeroHalfNaNs(byte[] d)
        {
            for (int i = 0; i + 1 < d.Length; i += 2)
                if ((d[i + 1] & 0x7c) == 0x7c && ((d[i + 1] & 0x03) != 0 || d[i] != 0)) d[i] = d[i + 1] = 0;
        }

        void AbandonStale()
        {
            float now = Time.unscaledTime;
            for (int i = _inFlight.Count - 1; i >= 0; i--)
            {
                var c = _inFlight[i];
                if (now - c.StartedAt < AbandonAfterS) continue;
                c.Pending = 0; // its late callbacks are ignored
                _inFlight.RemoveAt(i);
                Failed++;
            }
        }

        void EnsureTargets()
        {
            if (_colour && _colourRt == null)
                _colourRt = NewTarget("colour", RenderTextureFormat.ARGB32, RenderTextureReadWrite.sRGB); // bytes as the colour picker shows them
            if (_depth && _depthRt == null)
            {
                _depthRtIsHalf = depthFormat == GuidanceDepthFormat.F16 && SystemInfo.SupportsRenderTextureFormat(RenderTextureFormat.RHalf);
                _depthRt = NewTarget("depth", _depthRtIsHalf ? RenderTextureFormat.RHalf : RenderTextureFormat.RFloat, RenderTextureReadWrite.Linear);
            }
            if (_ids && _idsRt == null)
                _idsRt = NewTarget("ids", RenderTextureFormat.ARGB32, RenderTextureReadWrite.Linear); // exact bytes: no sRGB
        }

        RenderTexture NewTarget(string what, RenderTextureFormat format, RenderTextureReadWrite readWrite)
        {
            var rt = new RenderTexture(_width, _height, 24, format, readWrite);
            rt.name = "WorldBridge guidance " + what + " " + _width + "x" + _height;
            rt.hideFlags = HideFlags.HideAndDontSave;
            rt.antiAliasing = 1;
            rt.useMipMap = false;
            rt.filterMode = FilterMode.Point;
            rt.Create();
            return rt;
        }

        void ReleaseTargets()
        {
            if (_inFlight.Count > 0) AsyncGPUReadback.WaitAllRequests(); // only on a size change or teardown
            Release(ref _colourRt);
            Release(ref _depthRt);
            Release(ref _idsRt);
        }

        static void Release(ref RenderTexture rt)
        {
            if (rt == null) return;
            rt.Release();
            if (Application.isPlaying) Destroy(rt);
            else DestroyImmediate(rt);
            rt = null;
        }

        void OnValidate()
        {
            // a depth format changed in the inspector: make the depth target again
            if (_depthRt != null && (_depthRtIsHalf != (depthFormat == GuidanceDepthFormat.F16))) { ReleaseTargets(); _ready = null; }
        }

        void OnDisable()
        {
            ReleaseTargets();
            foreach (var c in _inFlight) c.Pending = 0; // late callbacks are ignored
            _inFlight.Clear();
            _generation++;
            _ready = null;
            if (_camera != null)
            {
                var go = _camera.gameObject;
                _camera = null;
                if (Application.isPlaying) Destroy(go);
                else DestroyImmediate(go);
            }
        }

        void WarnOnce(string message)
        {
            if (_warned) return;
            _warned = true;
            Debug.LogWarning("[WorldBridge] " + message, this);
        }
    }
}
