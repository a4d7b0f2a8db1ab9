// Builds the Basic Scene at play time: a camera, a full-screen RawImage showing the world, a WorldModelView
// driven by WASD + mouse (click to capture the mouse, Esc to release, Shift to run), and a small status overlay.
// Put it on an empty GameObject in an empty scene and press Play (see README.md).
using UnityEngine;
using UnityEngine.UI;

namespace WorldBridge.Samples
{
    [AddComponentMenu("WorldBridge/Samples/Basic Scene Bootstrap")]
    public class BasicSceneBootstrap : MonoBehaviour
    {
        public string address = "tcp://127.0.0.1:5557";
        public string world = "maze";
        [Min(16)] public int width = 256;
        [Min(16)] public int height = 256;
        public WorldBridge.Core.PixelFormat format = WorldBridge.Core.PixelFormat.Rgb8;

        WorldModelView _view;
        string _lastError = "";
        int _episodeSeed;

        void Awake()
        {
            if (Camera.main == null)
            {
                var camera = new GameObject("Main Camera", typeof(Camera));
                camera.tag = "MainCamera";
                camera.transform.position = new Vector3(0.5f, 0.5f, 0.5f); // the maze's eye height
            }

            var canvasObject = new GameObject("WorldBridge Canvas", typeof(Canvas));
            canvasObject.GetComponent<Canvas>().renderMode = RenderMode.ScreenSpaceOverlay;

            var imageObject = new GameObject("World", typeof(RectTransform), typeof(RawImage));
            imageObject.transform.SetParent(canvasObject.transform, false);
            var rect = imageObject.GetComponent<RectTransform>();
            rect.anchorMin = Vector2.zero; // stretch over the whole screen
            rect.anchorMax = Vector2.one;
            rect.offsetMin = Vector2.zero;
            rect.offsetMax = Vector2.zero;
            var image = imageObject.GetComponent<RawImage>();
            image.color = Color.white;

            // Configure before enabling: WorldModelView connects in OnEnable.
            var viewObject = new GameObject("WorldModelView");
            viewObject.SetActive(false);
            _view = viewObject.AddComponent<WorldModelView>();
            _view.address = address;
            _view.world = world;
            _view.width = width;
            _view.height = height;
            _view.format = format;
            _view.targetRawImage = image;
            _view.verboseLogging = true;
            _view.onError.AddListener((code, message) => _lastError = code + " " + message);
            viewObject.SetActive(true);
        }

        void OnGUI()
        {
            if (_view == null) return;
            var w = _view.Welcome;
            string text = string.Format("{0}  {1}\n{2:0} fps in, {3:0} fps shown, latency {4:0.0} ms\n{5}",
                _view.State, w != null ? w.World + " " + w.Width + "x" + w.Height : _view.address,
                _view.ReceiveFps, _view.DisplayFps, _view.LatencyMs,
                Cursor.lockState == CursorLockMode.Locked ? "WASD move, mouse look, Shift run, Esc release" : "click to capture the mouse");
            if (_lastError.Length > 0) text += "\nlast error: " + _lastError;
            GUI.Label(new Rect(10, 10, 600, 80), text);
            if (GUI.Button(new Rect(10, 90, 140, 24), "Reset (new seed)")) _view.ResetWorld(++_episodeSeed);
        }
    }
}
