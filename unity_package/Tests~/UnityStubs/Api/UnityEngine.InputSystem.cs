// Stand-ins for the Input System package (com.unity.inputsystem 1.x) members the package uses.
using System;
using UnityEngine.InputSystem.Controls;

namespace UnityEngine.InputSystem
{
    public abstract class InputControl { }

    public abstract class InputControl<TValue> : InputControl where TValue : struct
    {
        public TValue ReadValue() { return default(TValue); }
    }

    public class InputDevice : InputControl { }

    public enum Key
    {
        None = 0, Space = 1, Enter = 2, Tab = 3, A = 15, D = 18, S = 33, W = 37, LeftShift = 51, RightShift = 52, Escape = 60,
    }

    public class Keyboard : InputDevice
    {
        public static Keyboard current { get { return null; } }
        public KeyControl this[Key key] { get { throw new NotImplementedException(); } }
    }

    public class Pointer : InputDevice
    {
        public DeltaControl delta { get { throw new NotImplementedException(); } }
    }

    public class Mouse : Pointer
    {
        public static Mouse current { get { return null; } }
        public ButtonControl leftButton { get { throw new NotImplementedException(); } }
    }

    /// <summary>Real Input System has PlayerInput: a package type of that name would be ambiguous.</summary>
    public class PlayerInput : MonoBehaviour { }
}

namespace UnityEngine.InputSystem.Controls
{
    public class AxisControl : InputControl<float> { }

    public class ButtonControl : AxisControl
    {
        public bool isPressed { get { return false; } }
        public bool wasPressedThisFrame { get { return false; } }
        public bool wasReleasedThisFrame { get { return false; } }
    }

    public class KeyControl : ButtonControl { }
    public class Vector2Control : InputControl<Vector2> { }
    public class DeltaControl : Vector2Control { }
}
