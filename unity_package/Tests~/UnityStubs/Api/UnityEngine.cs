// Stand-ins for the UnityEngine API the package uses (Unity 2021.3 signatures). Compile-time only.
using System;
using System.Collections;

namespace UnityEngine
{
    [Flags]
    public enum HideFlags
    {
        None = 0, HideInHierarchy = 1, HideInInspector = 2, DontSaveInEditor = 4, NotEditable = 8, DontSaveInBuild = 16,
        DontUnloadUnusedAsset = 32, DontSave = 52, HideAndDontSave = 61,
    }

    public class Object
    {
        public string name { get; set; }
        public HideFlags hideFlags { get; set; }
        public static void Destroy(Object obj) { }
        public static void Destroy(Object obj, float t) { }
        public static void DestroyImmediate(Object obj) { }
        public static void DestroyImmediate(Object obj, bool allowDestroyingAssets) { }
        public static implicit operator bool(Object exists) { return !ReferenceEquals(exists, null); }
        public static bool operator ==(Object x, Object y) { return ReferenceEquals(x, y); }
        public static bool operator !=(Object x, Object y) { return !ReferenceEquals(x, y); }
        public override bool Equals(object other) { return ReferenceEquals(this, other); }
        public override int GetHashCode() { return 0; }
    }

    public class ScriptableObject : Object { }

    public class Component : Object
    {
        public Transform transform { get { throw new NotImplementedException(); } }
        public GameObject gameObject { get { throw new NotImplementedException(); } }
        public string tag { get; set; }
        public T GetComponent<T>() { throw new NotImplementedException(); }
    }

    public class Behaviour : Component
    {
        public bool enabled { get; set; }
        public bool isActiveAndEnabled { get { return enabled; } }
    }

    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        public GameObject() { }
        public GameObject(string name) { }
        public GameObject(string name, params Type[] components) { }
        public Transform transform { get { throw new NotImplementedException(); } }
        public string tag { get; set; }
        public T AddComponent<T>() where T : Component { throw new NotImplementedException(); }
        public T GetComponent<T>() { throw new NotImplementedException(); }
        public void SetActive(bool value) { }
    }

    public class Transform : Component, IEnumerable
    {
        public Vector3 position { get; set; }
        public Quaternion rotation { get; set; }
        public void SetParent(Transform parent) { }
        public void SetParent(Transform parent, bool worldPositionStays) { }
        public IEnumerator GetEnumerator() { throw new NotImplementedException(); }
    }

    public sealed class RectTransform : Transform
    {
        public Vector2 anchorMin { get; set; }
        public Vector2 anchorMax { get; set; }
        public Vector2 offsetMin { get; set; }
        public Vector2 offsetMax { get; set; }
    }

    public struct Vector2
    {
        public float x, y;
        public Vector2(float x, float y) { this.x = x; this.y = y; }
        public static Vector2 zero { get { return new Vector2(0, 0); } }
        public static Vector2 one { get { return new Vector2(1, 1); } }
        public static Vector2 operator +(Vector2 a, Vector2 b) { return new Vector2(a.x + b.x, a.y + b.y); }
        public static Vector2 operator -(Vector2 a, Vector2 b) { return new Vector2(a.x - b.x, a.y - b.y); }
        public static Vector2 operator *(Vector2 a, float d) { return new Vector2(a.x * d, a.y * d); }
        public static Vector2 operator *(float d, Vector2 a) { return new Vector2(a.x * d, a.y * d); }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
    }

    public struct Vector4
    {
        public float x, y, z, w;
        public Vector4(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
    }

    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
    }

    /// <summary>Real Unity has UnityEngine.Pose: a package type named Pose would be ambiguous.</summary>
    public struct Pose
    {
        public Vector3 position;
        public Quaternion rotation;
    }

    public struct Rect
    {
        public Rect(float x, float y, float width, float height) { }
    }

    public struct Color
    {
        public float r, g, b, a;
        public Color(float r, float g, float b, float a) { this.r = r; this.g = g; this.b = b; this.a = a; }
        public static Color white { get { return new Color(1, 1, 1, 1); } }
        public static Color black { get { return new Color(0, 0, 0, 1); } }
        public static Color grey { get { return new Color(0.5f, 0.5f, 0.5f, 1); } }
        public static Color clear { get { return new Color(0, 0, 0, 0); } }
    }

    public struct Mathf
    {
        public static float Max(float a, float b) { return a > b ? a : b; }
        public static int Max(int a, int b) { return a > b ? a : b; }
        public static int Clamp(int value, int min, int max) { return value < min ? min : value > max ? max : value; }
        public static float Min(float a, float b) { return a < b ? a : b; }
        public static float Clamp(float value, float min, float max) { return value < min ? min : value > max ? max : value; }
    }

    public class Time
    {
        public static float unscaledDeltaTime { get { return 0; } }
        public static float unscaledTime { get { return 0; } }
    }

    public class Application
    {
        public static bool isPlaying { get { return false; } }
    }

    public class Debug
    {
        public static void Log(object message) { }
        public static void Log(object message, Object context) { }
        public static void LogWarning(object message) { }
        public static void LogWarning(object message, Object context) { }
        public static void LogError(object message) { }
        public static void LogError(object message, Object context) { }
    }

    public enum CursorLockMode { None = 0, Locked = 1, Confined = 2 }

    public class Cursor
    {
        public static CursorLockMode lockState { get; set; }
        public static bool visible { get; set; }
    }

    public enum KeyCode
    {
        None = 0, Escape = 27, Space = 32, A = 97, D = 100, S = 115, W = 119, RightShift = 303, LeftShift = 304, Mouse0 = 323,
    }

    public class Input
    {
        public static bool GetKey(KeyCode key) { return false; }
        public static bool GetKeyDown(KeyCode key) { return false; }
        public static bool GetMouseButtonDown(int button) { return false; }
        public static float GetAxisRaw(string axisName) { return 0; }
    }

    public enum CameraClearFlags { Skybox = 1, Color = 2, SolidColor = 2, Depth = 3, Nothing = 4 }
    public enum RenderingPath { UsePlayerSettings = -1, VertexLit = 0, Forward = 1, DeferredLighting = 2, DeferredShading = 3 }
    [Flags] public enum DepthTextureMode { None = 0, Depth = 1, DepthNormals = 2, MotionVectors = 4 }

    public sealed class Camera : Behaviour
    {
        public static Camera main { get { return null; } }
        public float fieldOfView { get; set; }
        public float aspect { get; set; }
        public Rect rect { get; set; }
        public CameraClearFlags clearFlags { get; set; }
        public Color backgroundColor { get; set; }
        public bool allowMSAA { get; set; }
        public bool allowHDR { get; set; }
        public RenderingPath renderingPath { get; set; }
        public DepthTextureMode depthTextureMode { get; set; }
        public RenderTexture targetTexture { get; set; }
        public void Render() { }
        public void RenderWithShader(Shader shader, string replacementTag) { }
        public void CopyFrom(Camera other) { }
    }

    public sealed class Shader : Object
    {
        public bool isSupported { get { return true; } }
        public static Shader Find(string name) { return null; }
        public static int PropertyToID(string name) { return 0; }
        public static void SetGlobalFloat(int nameID, float value) { }
        public static void SetGlobalColor(int nameID, Color value) { }
        public static void SetGlobalVector(int nameID, Vector4 value) { }
        public static Vector4 GetGlobalVector(int nameID) { return new Vector4(); }
    }

    public sealed class MaterialPropertyBlock
    {
        public void SetFloat(int nameID, float value) { }
        public void SetColor(int nameID, Color value) { }
    }

    public sealed class SystemInfo
    {
        public static bool supportsAsyncGPUReadback { get { return true; } }
        public static bool SupportsRenderTextureFormat(RenderTextureFormat format) { return true; }
    }

    public enum TextureFormat { Alpha8 = 1, ARGB4444 = 2, RGB24 = 3, RGBA32 = 4, ARGB32 = 5, RHalf = 15, RFloat = 18 }
    public enum TextureWrapMode { Repeat = 0, Clamp = 1, Mirror = 2, MirrorOnce = 3 }
    public enum FilterMode { Point = 0, Bilinear = 1, Trilinear = 2 }
    public enum RenderTextureFormat { ARGB32 = 0, Depth = 1, ARGBHalf = 2, Default = 7, RFloat = 14, RHalf = 15 }
    public enum RenderTextureReadWrite { Default = 0, Linear = 1, sRGB = 2 }

    public class Texture : Object
    {
        public virtual int width { get; set; }
        public virtual int height { get; set; }
        public TextureWrapMode wrapMode { get; set; }
        public FilterMode filterMode { get; set; }
    }

    public sealed class Texture2D : Texture
    {
        public Texture2D(int width, int height) { }
        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain) { }
        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain, bool linear) { }
        public TextureFormat format { get { return TextureFormat.RGB24; } }
        public void LoadRawTextureData(byte[] data) { }
        public void LoadRawTextureData(IntPtr data, int size) { }
        public void Apply(bool updateMipmaps = true, bool makeNoLongerReadable = false) { }
        public void ReadPixels(Rect source, int destX, int destY, bool recalculateMipMaps = true) { }
        public byte[] GetRawTextureData() { return new byte[0]; }
    }

    public class RenderTexture : Texture
    {
        public RenderTexture(int width, int height, int depth, RenderTextureFormat format) { }
        public RenderTexture(int width, int height, int depth, RenderTextureFormat format, RenderTextureReadWrite readWrite) { }
        public static RenderTexture active { get; set; }
        public int antiAliasing { get; set; }
        public bool useMipMap { get; set; }
        public bool Create() { return true; }
        public void Release() { }
        public bool IsCreated() { return true; }
        public static RenderTexture GetTemporary(int width, int height, int depthBuffer = 0,
            RenderTextureFormat format = RenderTextureFormat.Default,
            RenderTextureReadWrite readWrite = RenderTextureReadWrite.Default, int antiAliasing = 1) { return null; }
        public static void ReleaseTemporary(RenderTexture temp) { }
    }

    public class Graphics
    {
        public static void Blit(Texture source, RenderTexture dest) { }
        public static void Blit(Texture source, RenderTexture dest, Vector2 scale, Vector2 offset) { }
    }

    public static class ImageConversion
    {
        public static bool LoadImage(this Texture2D tex, byte[] data, bool markNonReadable) { return true; }
        public static bool LoadImage(this Texture2D tex, byte[] data) { return true; }
    }

    public class Material : Object
    {
        public Texture mainTexture { get; set; }
    }

    public class Renderer : Component
    {
        public Material material { get; set; }
        public Material sharedMaterial { get; set; }
        public void GetPropertyBlock(MaterialPropertyBlock properties) { }
        public void SetPropertyBlock(MaterialPropertyBlock properties) { }
    }

    public enum RenderMode { ScreenSpaceOverlay = 0, ScreenSpaceCamera = 1, WorldSpace = 2 }

    public sealed class Canvas : Behaviour
    {
        public RenderMode renderMode { get; set; }
    }

    public class GUIContent
    {
        public GUIContent() { }
        public GUIContent(string text) { }
    }

    public class GUIStyle { }
    public sealed class GUILayoutOption { }

    public class GUI
    {
        public static bool enabled { get; set; }
        public static void Label(Rect position, string text) { }
        public static bool Button(Rect position, string text) { return false; }
    }

    public class GUILayout
    {
        public static bool Button(string text, params GUILayoutOption[] options) { return false; }
        public static void Label(string text, params GUILayoutOption[] options) { }
        public static void Label(string text, GUIStyle style, params GUILayoutOption[] options) { }
        public static GUILayoutOption ExpandHeight(bool expand) { return null; }
    }

    public abstract class PropertyAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class SerializeField : Attribute { }

    [AttributeUsage(AttributeTargets.Field, AllowMultiple = true)]
    public class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string header) { } }

    [AttributeUsage(AttributeTargets.Field, AllowMultiple = true)]
    public class TooltipAttribute : PropertyAttribute { public TooltipAttribute(string tooltip) { } }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class RangeAttribute : PropertyAttribute { public RangeAttribute(float min, float max) { } }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class MinAttribute : PropertyAttribute { public MinAttribute(float min) { } }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class TextAreaAttribute : PropertyAttribute
    {
        public readonly int minLines, maxLines;
        public TextAreaAttribute() { minLines = 3; maxLines = 3; }
        public TextAreaAttribute(int minLines, int maxLines) { this.minLines = minLines; this.maxLines = maxLines; }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DisallowMultipleComponent : Attribute { }

    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class RequireComponent : Attribute { public RequireComponent(Type requiredComponent) { } }
}

namespace Unity.Collections
{
    public struct NativeArray<T> : IDisposable where T : struct
    {
        public int Length { get { return 0; } }
        public T this[int index] { get { throw new NotImplementedException(); } set { } }
        public void CopyTo(T[] array) { }
        public T[] ToArray() { return new T[0]; }
        public void Dispose() { }
    }
}

namespace UnityEngine.Rendering
{
    public struct AsyncGPUReadbackRequest
    {
        public bool done { get { return false; } }
        public bool hasError { get { return false; } }
        public int width { get { return 0; } }
        public int height { get { return 0; } }
        public int layerDataSize { get { return 0; } }
        public Unity.Collections.NativeArray<T> GetData<T>(int layer = 0) where T : struct { return new Unity.Collections.NativeArray<T>(); }
        public void Update() { }
        public void WaitForCompletion() { }
    }

    public static class AsyncGPUReadback
    {
        public static AsyncGPUReadbackRequest Request(Texture src, int mipIndex, TextureFormat dstFormat, Action<AsyncGPUReadbackRequest> callback = null) { return new AsyncGPUReadbackRequest(); }
        public static void WaitAllRequests() { }
    }
}

namespace UnityEngine.Events
{
    public delegate void UnityAction();
    public delegate void UnityAction<T0>(T0 arg0);
    public delegate void UnityAction<T0, T1>(T0 arg0, T1 arg1);

    [Serializable]
    public abstract class UnityEventBase { }

    [Serializable]
    public class UnityEvent : UnityEventBase
    {
        public void AddListener(UnityAction call) { }
        public void RemoveListener(UnityAction call) { }
        public void Invoke() { }
    }

    [Serializable]
    public class UnityEvent<T0> : UnityEventBase
    {
        public void AddListener(UnityAction<T0> call) { }
        public void RemoveListener(UnityAction<T0> call) { }
        public void Invoke(T0 arg0) { }
    }

    [Serializable]
    public class UnityEvent<T0, T1> : UnityEventBase
    {
        public void AddListener(UnityAction<T0, T1> call) { }
        public void RemoveListener(UnityAction<T0, T1> call) { }
        public void Invoke(T0 arg0, T1 arg1) { }
    }
}

namespace UnityEngine.EventSystems
{
    public abstract class UIBehaviour : MonoBehaviour { }
}

namespace UnityEngine.UI
{
    public abstract class Graphic : UnityEngine.EventSystems.UIBehaviour
    {
        public virtual Color color { get; set; }
    }

    public abstract class MaskableGraphic : Graphic { }

    public class RawImage : MaskableGraphic
    {
        public Texture texture { get; set; }
    }
}
