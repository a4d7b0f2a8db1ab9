// Stand-ins for the UnityEditor API the package uses (Unity 2021.3 signatures). Compile-time only.
using System;
using UnityEngine;

namespace UnityEditor
{
    public class Editor : ScriptableObject
    {
        public UnityEngine.Object target { get; set; }
        public virtual void OnInspectorGUI() { }
        public bool DrawDefaultInspector() { return true; }
        public virtual bool RequiresConstantRepaint() { return false; }
        public void Repaint() { }
    }

    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class CustomEditor : Attribute
    {
        public CustomEditor(Type inspectedType) { }
    }

    public class EditorWindow : ScriptableObject
    {
        public GUIContent titleContent { get; set; }
        public static T GetWindow<T>() where T : EditorWindow { throw new NotImplementedException(); }
        public void Show() { }
        public void Repaint() { }
    }

    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class MenuItem : Attribute
    {
        public MenuItem(string itemName) { }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public class InitializeOnLoadAttribute : Attribute { }

    public enum MessageType { None = 0, Info = 1, Warning = 2, Error = 3 }

    public class EditorGUILayout
    {
        public static void Space() { }
        public static void LabelField(string label, params GUILayoutOption[] options) { }
        public static void LabelField(string label, GUIStyle style, params GUILayoutOption[] options) { }
        public static string TextField(string label, string text, params GUILayoutOption[] options) { return text; }
        public static void HelpBox(string message, MessageType type) { }
        public static Rect BeginHorizontal(params GUILayoutOption[] options) { return default(Rect); }
        public static void EndHorizontal() { }
        public static Vector2 BeginScrollView(Vector2 scrollPosition, params GUILayoutOption[] options) { return scrollPosition; }
        public static void EndScrollView() { }
    }

    public class Undo
    {
        public static T AddComponent<T>(GameObject gameObject) where T : Component { throw new NotImplementedException(); }
    }

    public sealed class EditorStyles
    {
        public static GUIStyle boldLabel { get { return null; } }
        public static GUIStyle wordWrappedLabel { get { return null; } }
    }

    public sealed class EditorPrefs
    {
        public static string GetString(string key, string defaultValue) { return defaultValue; }
        public static void SetString(string key, string value) { }
    }

    public sealed class SessionState
    {
        public static string GetString(string key, string defaultValue) { return defaultValue; }
        public static void SetString(string key, string value) { }
        public static int GetInt(string key, int defaultValue) { return defaultValue; }
        public static void SetInt(string key, int value) { }
        public static void EraseInt(string key) { }
    }

    public enum PlayModeStateChange { EnteredEditMode = 0, ExitingEditMode = 1, EnteredPlayMode = 2, ExitingPlayMode = 3 }

    public sealed class EditorApplication
    {
        public delegate void CallbackFunction();
        public static CallbackFunction update;
        public static event Action quitting;
        public static event Action<PlayModeStateChange> playModeStateChanged;
        static void Unused() { quitting(); playModeStateChanged(PlayModeStateChange.EnteredEditMode); }
    }

    public static class AssemblyReloadEvents
    {
        public delegate void AssemblyReloadCallback();
        public static event AssemblyReloadCallback beforeAssemblyReload;
        public static event AssemblyReloadCallback afterAssemblyReload;
        static void Unused() { beforeAssemblyReload(); afterAssemblyReload(); }
    }
}
