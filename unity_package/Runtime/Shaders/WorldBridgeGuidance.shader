// Replacement shader of WorldBridge.GuidanceCapture (protocol 1.3 guidance, docs/protocol.md section 4c), used
// with Camera.RenderWithShader(shader, ""): every renderer the camera sees is drawn with this pass, keeping its
// own material's property values and MaterialPropertyBlock. Built-in render pipeline.
//
// _WorldBridgeGuidanceMode (global, set before each render):
//   0 colour  flat, unlit: a GuidanceTag's _WorldBridgeColor (alpha > 0), else the material's _BaseColor, else its
//             _Color (the capture sets the globals so that a material without them gets its default colour);
//             into an sRGB ARGB32 target, so the bytes read back are the colour as the colour picker shows it
//   1 depth   length(worldPos - _WorldSpaceCameraPos): the distance along the pixel's ray in world units, into an
//             RFloat or RHalf target cleared to 0 (0 = no surface, the sky)
//   2 ids     a GuidanceTag's _WorldBridgeId (>= 0), else _WorldBridgeDefaultId, as uint16 split into r = low
//             byte and g = high byte of a linear ARGB32 target cleared to 0 (the sky's id)
Shader "Hidden/WorldBridge/Guidance"
{
    SubShader
    {
        Tags { "RenderType" = "Opaque" }
        Pass
        {
            ZWrite On
            ZTest LEqual
            Cull Back
            Blend Off

            CGPROGRAM
            #pragma vertex vert
            #pragma fragment frag
            #pragma target 3.0
            #include "UnityCG.cginc"

            float4 _Color;
            float4 _BaseColor;
            float4 _WorldBridgeColor;
            float _WorldBridgeId;
            float _WorldBridgeDefaultId;
            float _WorldBridgeGuidanceMode;

            struct v2f
            {
                float4 pos : SV_POSITION;
                float3 world : TEXCOORD0;
            };

            v2f vert(appdata_base v)
            {
                v2f o;
                o.pos = UnityObjectToClipPos(v.vertex);
                o.world = mul(unity_ObjectToWorld, v.vertex).xyz;
                return o;
            }

            float4 frag(v2f i) : SV_Target
            {
                if (_WorldBridgeGuidanceMode > 1.5)
                {
                    float id = _WorldBridgeId >= 0 ? _WorldBridgeId : _WorldBridgeDefaultId;
                    id = clamp(round(id), 0, 65535);
                    float hi = floor(id / 256);
                    float lo = id - hi * 256;
                    return float4(lo / 255, hi / 255, 0, 1);
                }
                if (_WorldBridgeGuidanceMode > 0.5)
                    return float4(length(i.world - _WorldSpaceCameraPos), 0, 0, 1);
                float4 c = _WorldBridgeColor.a > 0 ? _WorldBridgeColor : (_BaseColor.a >= 0 ? _BaseColor : _Color);
                return float4(saturate(c.rgb), 1);
            }
            ENDCG
        }
    }
    Fallback Off
}
