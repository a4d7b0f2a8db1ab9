// Shows a world model hosted by a WorldBridge daemon: sends the player's input (and optionally the camera pose and,
// protocol 1.3, the camera's guidance buffers through a GuidanceCapture) at a fixed rate, and on the main thread
// uploads the newest frame into a RenderTexture that a RawImage or a Renderer can show. All networking runs on
// WorldBridgeClient's own thread; nothing here blocks on it.
using System;
using UnityEngine;
using UnityEngine.Events;
using UnityEngine.UI;
using WorldBridge.Core;

namespace WorldBridge
{
    [Serializable] public class FrameEvent : UnityEvent<RenderTexture> { }
    /// <summary>(code, "name: message") of an error from the daemon; code 0 for one the client detected.</summary>
    [Serializable] public class ErrorEvent : UnityEvent<int, string> { }
    /// <summary>(path on the daemon's machine, frames) of a finished recording.</summary>
    [Serializable] public class RecordedEvent : UnityEvent<string, int> { }

    [AddComponentMenu("WorldBridge/World Model View")]
    [DisallowMultipleComponent]
    public class WorldModelView : MonoBehaviour
    {
        [Header("Daemon")]
        [Tooltip("Where `worldbridge serve` listens")]
        public string address = "tcp://127.0.0.1:5557";
        [Tooltip("World the daemon serves (informational: the daemon decides; the editor's Start local daemon uses it)")]
        public string world = "maze";
        [Tooltip("Authentication token, when the daemon was started with one")]
        public string token = "";
        [Tooltip("Log connection events to the console")]
        public bool verboseLogging = false;

        [Header("Frames")]
        [Min(1)] public int width = 256;
        [Min(1)] public int height = 256;
        public PixelFormat format = PixelFormat.Rgb8;
        [Range(1, 100)] public int jpegQuality = 85;
        [Tooltip("Frames the daemon may have in flight for us (1-3)")]
        [Range(1, 16)] public int credits = 2;
        [Tooltip("Ask for frames no faster than this component shows them (saves the daemon's time)")]
        public bool paceToDisplay = true;
        [Tooltip("Seed of the first episode")]
        public int seed = 0;
        [Tooltip("The scene in text, for worlds whose welcome lists the \"prompt\" capability (protocol 1.2; others " +
                 "ignore it): at most 2000 bytes as UTF-8, sent in the hello. Empty: the world's default. " +
                 "ResetWorld(seed, prompt) changes it for the episodes after.")]
        [TextArea(2, 6)] public string prompt = "";

        [Header("Input")]
        public bool captureInput = true;
        [Range(1, 120)] public float sendRateHz = 30f;
        [Tooltip("Lock the cursor on click for mouse look; the release key unlocks it")]
        public bool lockCursor = true;
        public InputBindings bindings = new InputBindings();
        [Tooltip("Send the target camera's pose every input: the engine owns the camera, the world renders from it")]
        public bool sendCameraPose = false;
        [Tooltip("Camera whose pose (and field of view) is sent; Camera.main when empty")]
        public Camera targetCamera;

        [Header("Recording (protocol 1.1)")]
        [Tooltip("Record what the target camera renders, with each input and the camera's pose, as a dataset for " +
                 "fine-tuning (docs/finetune.md). The daemon must run with --record-dir. While recording the pose " +
                 "is always sent, so the world follows the engine camera; with Send Guidance each recorded frame " +
                 "renders its own guidance with its image (both read back at once), so they are of one frame.")]
        public bool record = false;
        [Tooltip("A wish for the recording's folder name: the daemon keeps [A-Za-z0-9_-] and may add -2, -3")]
        public string recordName = "level";

        [Header("Guidance (protocol 1.3)")]
        [Tooltip("For worlds whose welcome lists the \"guidance\" capability: render the target camera's cheap buffers " +
                 "(flat colour, ray depth, ids; a GuidanceCapture on this GameObject, added when missing, holds their " +
                 "settings) with a replacement shader, read them back without stalling, and send the newest with each " +
                 "input, together with the camera pose it was rendered from. Built-in render pipeline. Other worlds: nothing is captured.")]
        public bool sendGuidance = false;

        [Header("Output")]
        [Tooltip("Shows the frames (optional)")]
        public RawImage targetRawImage;
        [Tooltip("Its material's main texture shows the frames (optional), e.g. a quad")]
        public Renderer targetRenderer;

        [Header("Events")]
        public UnityEvent onConnected = new UnityEvent();
        public FrameEvent onFrame = new FrameEvent();
        public ErrorEvent onError = new ErrorEvent();
        public RecordedEvent onRecorded = new RecordedEvent();

        WorldBridgeClient _client;
        readonly FrameHeader _header = new FrameHeader();
        byte[] _pixels;
        Texture2D _upload;
        RenderTexture _target;
        Material _rendererMaterial;
        Texture2D _grab; // camera read-back for recording, kept while the size stays
        Vector2 _lookSinceSend;
        Vector2 _move;
        bool _run;
        float _sendTimer;
        int _shownInWindow;
        float _windowStart;
        float _displayFps;
        GuidanceCapture _capture;
        GuidanceOffer _captureOffer; // the offer _capture was configured for
        Welcome _guidanceWarned;     // the session already told that its world takes no guidance
        Welcome _recordGuidanceWarned; // the session already told that a recorded frame had no guidance

        /// <summary>Where the frames are drawn (null until the first welcome).</summary>
        public RenderTexture Texture { get { return _target; } }
        public WorldBridgeClient Client { get { return _client; } }
        public ClientState State { get { return _client != null ? _client.State : ClientState.Idle; } }
        public bool IsConnected { get { return _client != null && _client.IsConnected; } }
        /// <summary>The current session's welcome (size, world, limits); null while not connected.</summary>
        public Welcome Welcome { get { return _client != null ? _client.Welcome : null; } }
        /// <summary>Frames per second arriving from the daemon.</summary>
        public float ReceiveFps { get { return _client != null ? (float)_client.Fps : 0f; } }
        /// <summary>Frames per second uploaded and shown.</summary>
        public float DisplayFps { get { return _displayFps; } }
        /// <summary>Input-to-frame latency of the newest frame in ms (NaN before any frame answered an input).</summary>
        public double LatencyMs { get { return _client != null ? _client.LatencyMs : double.NaN; } }
        public ServerError LastError { get { return _client != null ? _client.LastError : null; } }
        /// <summary>The guidance renderer while Send Guidance is on and the world takes guidance (else null).</summary>
        public GuidanceCapture GuidanceCapture { get { return _capture; } }
        /// <summary>The newest frame's header (pose, episode, timings).</summary>
        public FrameHeader LastFrame { get { return _header; } }

        void OnEnable()
        {
            if (Application.isPlaying) StartClient();
        }

        void OnDisable()
        {
            StopClient();
            if (lockCursor && Cursor.lockState == CursorLockMode.Locked) Cursor.lockState = CursorLockMode.None;
        }

        void OnDestroy()
        {
            StopClient();
            Release(_upload);
            Release(_target);
            Release(_rendererMaterial);
            Release(_grab);
            _grab = null;
            _upload = null;
            _target = null;
            _rendererMaterial = null;
        }

        void OnApplicationQuit()
        {
            StopClient();
        }

        /// <summary>Connect with the current settings (stops a running client first).</summary>
        public void StartClient()
        {
            StopClient();
            var options = new ClientOptions
            {
                Address = address,
                Credits = credits,
                PaceToConsumer = paceToDisplay,
                Hello = new HelloRequest
                {
                    Client = "unity/" + WorldBridgeClient.Version,
                    Engine = "unity",
                    Width = width,
                    Height = height,
                    Format = format,
                    RowOrder = RowOrder.BottomUp, // the first row LoadRawTextureData expects is the bottom one
                    Capabilities = Capabilities(),
                    JpegQuality = jpegQuality,
                    Seed = seed,
                    Token = token ?? "",
                },
                Prompt = prompt ?? "",
            };
            if (verboseLogging)
            {
                string label = "[WorldBridge " + name + "] ";
                options.Log = message => Debug.Log(label + message); // Debug.Log is safe from the client thread
            }
            try
            {
                _client = new WorldBridgeClient(options);
                _client.Start();
            }
            catch (ArgumentException e)
            {
                _client = null;
                Debug.LogError("[WorldBridge] " + e.Message, this);
            }
        }

        string[] Capabilities()
        {
            if (sendCameraPose && sendGuidance) return new[] { "pose", Protocol.CapabilityGuidance };
            if (sendCameraPose) return new[] { "pose" };
            return sendGuidance ? new[] { Protocol.CapabilityGuidance } : new string[0];
        }

        /// <summary>Say bye and stop the client thread (returns within about two seconds at worst).</summary>
        public void StopClient()
        {
            if (_client == null) return;
            _client.Dispose();
            _client = null;
        }

        /// <summary>Start a new episode of the world.</summary>
        public void ResetWorld(long episodeSeed)
        {
            ResetWorld(episodeSeed, null);
        }

        /// <summary>Start a new episode described by `newPrompt` (protocol 1.2, worlds with the "prompt" capability);
        /// null or empty keeps the session's prompt. A non-empty one becomes the `prompt` field.</summary>
        public void ResetWorld(long episodeSeed, string newPrompt)
        {
            if (_client == null) return;
            _client.Reset(episodeSeed, sendCameraPose ? GetCameraPose() : (CameraPose?)null, newPrompt);
            if (!string.IsNullOrEmpty(newPrompt)) prompt = newPrompt;
        }

        /// <summary>Start a new episode from what the target camera sees now (worlds with the "start_image"
        /// capability; others start as usual). Renders the camera once at the session's frame size.</summary>
        public bool ResetWorldFromCamera(long episodeSeed)
        {
            var cam = ActiveCamera();
            var w = Welcome;
            if (_client == null || cam == null || w == null) return false;
            if (!w.Has("start_image")) Debug.LogWarning("[WorldBridge] world " + w.World + " ignores start images", this);
            ImageSpec spec;
            byte[] rgb = GrabCamera(cam, w.Width, w.Height, out spec);
            _client.Reset(episodeSeed, sendCameraPose ? GetCameraPose() : (CameraPose?)null, spec, rgb, rgb.Length);
            return true;
        }

        /// <summary>Stop recording: the daemon writes the dataset, then onRecorded gets its path and frames.</summary>
        public void StopRecording()
        {
            record = false;
            if (_client != null && _client.IsRecording) _client.StopRecording();
        }

        /// <summary>Render `cam` once at w x h and read it back (RGB24, bottom row first, as Unity's texture data
        /// is). A synchronous read-back stalls for the GPU; recording accepts that, because each frame must go
        /// out with the very input and pose it was rendered for.</summary>
        byte[] GrabCamera(Camera cam, int w, int h, out ImageSpec spec)
        {
            var rt = RenderTexture.GetTemporary(w, h, 24, RenderTextureFormat.ARGB32);
            var previousTarget = cam.targetTexture;
            var previousActive = RenderTexture.active;
            if (_grab == null || _grab.width != w || _grab.height != h)
            {
                Release(_grab);
                _grab = new Texture2D(w, h, TextureFormat.RGB24, false);
            }
            try
            {
                cam.targetTexture = rt;
                cam.Render();
                RenderTexture.active = rt;
                _grab.ReadPixels(new Rect(0, 0, w, h), 0, 0);
                spec = new ImageSpec { Width = w, Height = h, Format = PixelFormat.Rgb8, RowOrder = RowOrder.BottomUp };
                return _grab.GetRawTextureData();
            }
            finally
            {
                cam.targetTexture = previousTarget;
                RenderTexture.active = previousActive;
                RenderTexture.ReleaseTemporary(rt);
            }
        }

        void Update()
        {
            if (_client == null) return;
            HandleEvents();
            if (captureInput) CaptureInput();
            SendInputAtRate();
            ShowNewestFrame();
        }

        void HandleEvents()
        {
            ClientEvent e;
            while (_client.TryDequeueEvent(out e))
            {
                switch (e.Kind)
                {
                    case ClientEventKind.Connected:
                        EnsureTarget(e.Welcome.Width, e.Welcome.Height);
                        if (record && e.Welcome.Has("record")) _client.StartRecording(recordName);
                        else if (record) Debug.LogWarning("[WorldBridge] the daemon does not record (start it with --record-dir)", this);
                        onConnected.Invoke();
                        break;
                    case ClientEventKind.RecordOk:
                        if (verboseLogging) Debug.Log("[WorldBridge] recording " + e.RecordOk.Name, this);
                        break;
                    case ClientEventKind.RecordDone:
                        Debug.Log("[WorldBridge] recorded " + e.RecordDone.Frames + " frames into " + e.RecordDone.Path, this);
                        onRecorded.Invoke(e.RecordDone.Path, (int)e.RecordDone.Frames);
                        break;
                    case ClientEventKind.Error:
                        if (e.Error.Code != 0 || verboseLogging)
                            Debug.LogWarning("[WorldBridge] daemon error " + e.Error, this);
                        onError.Invoke(e.Error.Code, e.Error.Name + ": " + e.Error.Message);
                        break;
                }
            }
        }

        void CaptureInput()
        {
            var input = PlayerInputReader.Read(bindings);
            _move = input.move;
            _run = input.run;
            if (lockCursor)
            {
                if (input.releaseCursor) Cursor.lockState = CursorLockMode.None;
                else if (input.clicked) Cursor.lockState = CursorLockMode.Locked;
                if (Cursor.lockState != CursorLockMode.Locked) return; // look only while the cursor is captured
            }
            _lookSinceSend += input.look;
        }

        void SendInputAtRate()
        {
            float period = 1f / Mathf.Max(1f, sendRateHz);
            _sendTimer += Time.unscaledDeltaTime;
            if (_sendTimer < period) return;
            _sendTimer = Mathf.Min(_sendTimer - period, period);

            var input = new InputState
            {
                MoveX = Mathf.Clamp(_move.x, -1f, 1f),
                MoveY = Mathf.Clamp(_move.y, -1f, 1f),
                LookYaw = _lookSinceSend.x,
                LookPitch = _lookSinceSend.y,
                Buttons = _run ? InputState.ButtonRun : 0u,
            };
            bool recording = record && _client.IsRecording;
            var cam = ActiveCamera();
            bool guided = PrepareGuidance(cam);
            if ((sendCameraPose || recording || guided) && cam != null)
            {
                input.HasPose = true;
                input.Pose = GetCameraPose();
                input.FovDeg = cam.fieldOfView; // vertical, in degrees, as the protocol wants
            }
            var w = Welcome;
            bool recordFrame = recording && cam != null && w != null;
            if (guided) _capture.OnDemandOnly = recordFrame;
            Guidance guidance;
            // the newest read-back, with the pose and fov it was rendered from (1-3 frames old, as the guidance is):
            // a guidance is of the camera its input's pose places. A recorded frame renders its own below, with its image.
            if (guided && !recordFrame && _capture.TryTakeGuidance(out guidance))
            {
                input.Guidance = guidance;
                input.HasPose = true;
                input.Pose = _capture.LastPose;
                input.FovDeg = _capture.LastFovDeg;
            }
            OnBeforeSendInput(ref input);
            if (recordFrame && input.HasPose)
            {
                // Image, pose and guidance of one moment: the camera renders both now, in this Update, from the
                // transform the pose was read from; both are read back before anything moves (a stall each).
                if (guided && input.Guidance == null)
                {
                    if (_capture.CaptureNow(cam, out guidance)) input.Guidance = guidance;
                    else
                    {
                        // without this frame's guidance a guided world refuses the image (or records it with an
                        // older frame's): the input goes without the image, so its move and look still count
                        WarnRecordedWithoutGuidance(w);
                        _client.SendInput(input);
                        _lookSinceSend = Vector2.zero;
                        return;
                    }
                }
                ImageSpec spec;
                byte[] rgb = GrabCamera(cam, w.Width, w.Height, out spec); // the frame this input and pose gave
                _client.SendRecordedInput(input, spec, rgb, rgb.Length);
            }
            else _client.SendInput(input);
            _lookSinceSend = Vector2.zero;
        }

        void WarnRecordedWithoutGuidance(Welcome w)
        {
            if (_recordGuidanceWarned == w) return;
            _recordGuidanceWarned = w;
            Debug.LogWarning("[WorldBridge] no guidance could be rendered for a recorded frame (see the Guidance Capture's " +
                             "warning): such frames go without their image, as a guided world would refuse them", this);
        }

        // Keeps the GuidanceCapture configured for the session's world while Send Guidance is on; true when it
        // captures (the world takes guidance and a camera is there).
        bool PrepareGuidance(Camera cam)
        {
            var w = Welcome;
            bool wanted = sendGuidance && w != null && cam != null;
            if (wanted && (w.Guidance == null || !w.Has(Protocol.CapabilityGuidance)))
            {
                if (_guidanceWarned != w)
                {
                    _guidanceWarned = w;
                    Debug.LogWarning("[WorldBridge] world " + w.World + " does not take guidance (no \"guidance\" capability): none is sent", this);
                }
                wanted = false;
            }
            if (!wanted)
            {
                if (_capture != null) _capture.OnDemandOnly = false;
                if (_capture != null && _capture.IsConfigured) _capture.Stop();
                _captureOffer = null;
                return false;
            }
            if (_capture == null)
            {
                _capture = GetComponent<GuidanceCapture>();
                if (_capture == null) _capture = gameObject.AddComponent<GuidanceCapture>();
            }
            _capture.sourceCamera = cam;
            if (_captureOffer != w.Guidance)
            {
                _captureOffer = w.Guidance;
                if (!_capture.ConfigureFor(w.Guidance))
                    Debug.LogWarning("[WorldBridge] world " + w.World + " offers no guidance size or buffer this package captures", this);
                else if (verboseLogging)
                    Debug.Log("[WorldBridge] capturing guidance " + _capture.Width + "x" + _capture.Height + " (" + string.Join(", ", w.Guidance.Buffers) + ")", this);
            }
            return _capture.IsConfigured && _capture.isActiveAndEnabled;
        }

        /// <summary>Extension point, called on the main thread before each input is queued: change or add to
        /// what is sent (another input device, a scripted camera path). While recording, the camera's frame is
        /// grabbed after this and goes out with the input (protocol 1.1): a camera moved here should get a matching
        /// input.Pose. With Send Guidance, input.Guidance holds the newest guidance read back since the previous
        /// input, or null (protocol 1.3; set your own here); when it holds one, input.Pose and input.FovDeg are
        /// those it was rendered from (set them too if you replace it); while recording it is null here, and the recorded
        /// frame's own guidance is rendered with its image after this (unless you set one).</summary>
        protected virtual void OnBeforeSendInput(ref InputState input) { }

        void ShowNewestFrame()
        {
            int length;
            if (!_client.TryTakeFrame(_header, ref _pixels, out length)) { UpdateDisplayFps(false); return; }
            EnsureTarget(_header.Width, _header.Height);
            bool flip = false;
            if (_header.Format == PixelFormat.Jpeg)
            {
                if (_upload == null || _upload.format != TextureFormat.RGB24)
                {
                    Release(_upload);
                    _upload = NewTexture(2, 2, TextureFormat.RGB24); // LoadImage resizes it
                }
                // JPEG frames come in exact-size arrays: LoadImage decodes top-down data the right way up
                if (!ImageConversion.LoadImage(_upload, _pixels))
                {
                    onError.Invoke(0, "client_decode: frame " + _header.Seq + " is not a readable JPEG");
                    return;
                }
            }
            else
            {
                var textureFormat = _header.Format == PixelFormat.Rgb8 ? TextureFormat.RGB24 : TextureFormat.RGBA32;
                if (_upload == null || _upload.width != _header.Width || _upload.height != _header.Height || _upload.format != textureFormat)
                {
                    Release(_upload);
                    _upload = NewTexture(_header.Width, _header.Height, textureFormat);
                }
                _upload.LoadRawTextureData(_pixels); // exactly width*height*channels bytes
                _upload.Apply(false);
                flip = _header.RowOrder == RowOrder.TopDown; // a daemon that ignored bottom_up
            }
            if (flip) Graphics.Blit(_upload, _target, new Vector2(1f, -1f), new Vector2(0f, 1f));
            else Graphics.Blit(_upload, _target);
            UpdateDisplayFps(true);
            onFrame.Invoke(_target);
        }

        void UpdateDisplayFps(bool shown)
        {
            if (shown) _shownInWindow++;
            float now = Time.unscaledTime;
            if (now - _windowStart >= 1f)
            {
                _displayFps = _shownInWindow / (now - _windowStart);
                _shownInWindow = 0;
                _windowStart = now;
            }
        }

        // The RenderTexture is created once and recreated only when the session's frame size changes.
        void EnsureTarget(int w, int h)
        {
            if (_target != null && _target.width == w && _target.height == h) return;
            Release(_target);
            _target = new RenderTexture(w, h, 0, RenderTextureFormat.ARGB32);
            _target.name = "WorldBridge " + w + "x" + h;
            _target.Create();
            if (targetRawImage != null) targetRawImage.texture = _target;
            if (targetRenderer != null)
            {
                if (_rendererMaterial == null) _rendererMaterial = targetRenderer.material; // an instance, ours to destroy
                _rendererMaterial.mainTexture = _target;
            }
        }

        static Texture2D NewTexture(int w, int h, TextureFormat f)
        {
            var t = new Texture2D(w, h, f, false);
            t.wrapMode = TextureWrapMode.Clamp;
            t.filterMode = FilterMode.Bilinear;
            return t;
        }

        Camera ActiveCamera() { return targetCamera != null ? targetCamera : Camera.main; }

        /// <summary>The target camera's transform as it is: Unity's left-handed, Y-up convention ("unity");
        /// the daemon converts.</summary>
        public CameraPose GetCameraPose()
        {
            var cam = ActiveCamera();
            if (cam == null) return CameraPose.Identity;
            Vector3 p = cam.transform.position;
            Quaternion q = cam.transform.rotation;
            return new CameraPose(p.x, p.y, p.z, q.x, q.y, q.z, q.w);
        }

        static void Release(UnityEngine.Object o)
        {
            if (o == null) return;
            var rt = o as RenderTexture;
            if (rt != null) rt.Release();
            if (Application.isPlaying) Destroy(o);
            else DestroyImmediate(o);
        }
    }
}
