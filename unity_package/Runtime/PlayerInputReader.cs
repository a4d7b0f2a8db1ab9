// Reads WASD + mouse for WorldModelView from the Input System package when the project uses it
// (ENABLE_INPUT_SYSTEM, and the package is present: WORLDBRIDGE_INPUT_SYSTEM comes from the asmdef's
// versionDefines), otherwise from the legacy Input Manager.
using System;
using UnityEngine;
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
using UnityEngine.InputSystem;
#endif

namespace WorldBridge
{
    /// <summary>Which keys and axes drive the world. Mouse look is in degrees per pixel of mouse motion.</summary>
    [Serializable]
    public class InputBindings
    {
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
        public Key forward = Key.W;
        public Key back = Key.S;
        public Key left = Key.A;
        public Key right = Key.D;
        public Key run = Key.LeftShift;
        public Key runAlt = Key.RightShift;
        public Key releaseCursor = Key.Escape;
#else
        public KeyCode forward = KeyCode.W;
        public KeyCode back = KeyCode.S;
        public KeyCode left = KeyCode.A;
        public KeyCode right = KeyCode.D;
        public KeyCode run = KeyCode.LeftShift;
        public KeyCode runAlt = KeyCode.RightShift;
        public KeyCode releaseCursor = KeyCode.Escape;
        [Tooltip("Input Manager axes for mouse motion")]
        public string mouseXAxis = "Mouse X";
        public string mouseYAxis = "Mouse Y";
        [Tooltip("Input Manager mouse axes report pixels times the axis sensitivity (0.1 by default); this undoes it")]
        public float axisToPixels = 10f;
#endif
        [Tooltip("Degrees of look per pixel of mouse motion")]
        public float mouseSensitivity = 0.15f;
        public bool invertY = false;
    }

    /// <summary>One frame's controller state.</summary>
    public struct ControllerState
    {
        public Vector2 move;     // (strafe right, forward), each in [-1, 1]
        public Vector2 look;     // (yaw right, pitch up) in degrees this frame
        public bool run;
        public bool clicked;     // primary mouse button went down this frame
        public bool releaseCursor;
    }

    public static class PlayerInputReader
    {
        public static ControllerState Read(InputBindings b)
        {
            var r = new ControllerState();
            Vector2 mousePixels = Vector2.zero;
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
            var kb = Keyboard.current;
            if (kb != null)
            {
                r.move.x = (kb[b.right].isPressed ? 1f : 0f) - (kb[b.left].isPressed ? 1f : 0f);
                r.move.y = (kb[b.forward].isPressed ? 1f : 0f) - (kb[b.back].isPressed ? 1f : 0f);
                r.run = kb[b.run].isPressed || kb[b.runAlt].isPressed;
                r.releaseCursor = kb[b.releaseCursor].wasPressedThisFrame;
            }
            var mouse = Mouse.current;
            if (mouse != null)
            {
                mousePixels = mouse.delta.ReadValue();
                r.clicked = mouse.leftButton.wasPressedThisFrame;
            }
#else
            r.move.x = (Input.GetKey(b.right) ? 1f : 0f) - (Input.GetKey(b.left) ? 1f : 0f);
            r.move.y = (Input.GetKey(b.forward) ? 1f : 0f) - (Input.GetKey(b.back) ? 1f : 0f);
            r.run = Input.GetKey(b.run) || Input.GetKey(b.runAlt);
            r.releaseCursor = Input.GetKeyDown(b.releaseCursor);
            r.clicked = Input.GetMouseButtonDown(0);
            if (!string.IsNullOrEmpty(b.mouseXAxis)) mousePixels.x = Input.GetAxisRaw(b.mouseXAxis) * b.axisToPixels;
            if (!string.IsNullOrEmpty(b.mouseYAxis)) mousePixels.y = Input.GetAxisRaw(b.mouseYAxis) * b.axisToPixels;
#endif
            r.look = mousePixels * b.mouseSensitivity;
            if (b.invertY) r.look.y = -r.look.y;
            return r;
        }
    }
}
