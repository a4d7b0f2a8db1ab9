// EditMode tests (Window > General > Test Runner) over the same core the daemon's CI checks with mono
// (Tests~/CoreTests runs the full byte-exact vector suite; these are the ones that need nothing outside the
// package). List the package under "testables" in Packages/manifest.json to see them.
using System;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    public class WorldBridgeCoreTests
    {
        // tests/vectors/hello.msgpack (protocol 1.3), frame.msgpack and input_guidance.msgpack of the WorldBridge repository
        const string HelloVector = "8da474797065a568656c6c6fa56d616a6f7201a56d696e6f7203a6636c69656e74ab756e6974792f302e312e30a6656e67696e65a5756e697479a57769647468cc80a6686569676874cc80a6666f726d6174a472676238a9726f775f6f72646572a9626f74746f6d5f7570a76372656469747302ac6361706162696c697469657390ac6a7065675f7175616c69747955a47365656400";
        const string FrameVector = "8ba474797065a56672616d65a373657100a9696e7075745f73657107a7696e7075745f74cb4028800000000000a7657069736f646501a5776964746804a668656967687402a6666f726d6174a472676238a9726f775f6f72646572a8746f705f646f776ea4706f736582a17093cb3ff8000000000000cb3fe0000000000000cbc000000000000000a17194cb0000000000000000cb3fd87de2a6aea963cb0000000000000000cb3fed906bcf328d46a774696d696e677383a871756575655f6d73cb3fe0000000000000a7737465705f6d73cb400a000000000000a9656e636f64655f6d73cb3fc0000000000000";
        const string InputGuidanceVector = "89a474797065a5696e707574a373657109a174cb4029800000000000a46d6f766592cb0000000000000000cb3ff0000000000000a46c6f6f6b92cb0000000000000000cb0000000000000000a7627574746f6e7300a4706f736582a17093cb3ff8000000000000cb3fe0000000000000cbc000000000000000a17194cb0000000000000000cb3fd87de2a6aea963cb0000000000000000cb3fed906bcf328d46a7666f765f646567cb404e000000000000a867756964616e636587a5776964746804a668656967687402a9726f775f6f72646572a9626f74746f6d5f7570a6636f6c6f7572c41878828c96a0aab4bec8d2dce6000a141e28323c46505a646ea56465707468c410004400480000003d0038003c0041007cac64657074685f666f726d6174a3663136a3696473c4100000000107000800010002000300ffff";
        const string ReadyDealerVector = "041c0552454144590b536f636b65742d54797065000000064445414c4552";

        static byte[] FromHex(string hex)
        {
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return b;
        }

        static byte[] Written(MsgPackWriter w)
        {
            return w.ToArray();
        }

        [Test]
        public void HelloIsWrittenExactlyAsTheProtocolVector()
        {
            var w = new MsgPackWriter();
            Protocol.WriteHello(w, new HelloRequest { Client = "unity/0.1.0", Engine = "unity", Width = 128, Height = 128, Credits = 2 });
            CollectionAssert.AreEqual(FromHex(HelloVector), Written(w));
        }

        [Test]
        public void GuidanceIsWrittenExactlyAsTheProtocolVector()
        {
            // a 4x2 guidance, bottom row first as an AsyncGPUReadback gives it: colour, f16 depth (+inf and 0: no surface), ids
            var colour = new byte[24];
            for (int i = 0; i < 12; i++) { colour[i] = (byte)(120 + 10 * i); colour[12 + i] = (byte)(10 * i); }
            var guidance = new Guidance
            {
                Width = 4, Height = 2, RowOrder = RowOrder.BottomUp, Colour = colour,
                Depth = Guidance.EncodeDepth(new[] { 4f, 8f, 0f, 1.25f, 0.5f, 1f, 2.5f, float.PositiveInfinity }, GuidanceDepthFormat.F16),
                DepthFormat = GuidanceDepthFormat.F16,
                Ids = Guidance.EncodeIds(new ushort[] { 0, 256, 7, 8, 1, 2, 3, 65535 }),
            };
            guidance.Validate();
            var input = new InputState
            {
                MoveY = 1, HasPose = true, FovDeg = 60, Guidance = guidance,
                Pose = new CameraPose(1.5, 0.5, -2.0, 0.0, 0.3826834323650898, 0.0, 0.9238795325112867),
            };
            var w = new MsgPackWriter();
            Protocol.WriteInput(w, 9, 12.75, ref input);
            CollectionAssert.AreEqual(FromHex(InputGuidanceVector), Written(w));

            guidance.Depth = new byte[15];
            try { guidance.Validate(); }
            catch (ArgumentException e) { Assert.IsTrue(e.Message.StartsWith("guidance.depth is 15 bytes, expected 16")); return; }
            throw new AssertionException("a depth of the wrong byte count was taken");
        }

        [Test]
        public void FrameHeaderDecodes()
        {
            var data = FromHex(FrameVector);
            var r = new MsgPackReader();
            Assert.AreEqual(MessageKind.Frame, Protocol.ReadKind(r, data, data.Length));
            var h = new FrameHeader();
            Protocol.ReadFrame(r, data, data.Length, h);
            Assert.AreEqual(7L, h.InputSeq);
            Assert.AreEqual(12.25, h.InputT);
            Assert.AreEqual(4, h.Width);
            Assert.AreEqual(RowOrder.TopDown, h.RowOrder);
            Assert.AreEqual(0.3826834323650898, h.Pose.Qy);
            Assert.AreEqual(24, h.ExpectedPayloadBytes);
        }

        [Test]
        public void IntegersRoundTripAtEveryBoundary()
        {
            long[] values = { 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, long.MaxValue,
                              -1, -32, -33, -128, -129, -32768, -32769, int.MinValue, -2147483649, long.MinValue };
            var w = new MsgPackWriter();
            foreach (var v in values) w.WriteInt(v);
            w.WriteUInt(ulong.MaxValue);
            var r = new MsgPackReader(w.Buffer, 0, w.Length);
            foreach (var v in values) Assert.AreEqual(v, r.ReadInt64());
            Assert.AreEqual(ulong.MaxValue, r.ReadUInt64());
            Assert.IsTrue(r.AtEnd);
        }

        [Test]
        public void ZmtpGreetingAndReadyAreTheRfcBytes()
        {
            var g = Zmtp.Greeting();
            Assert.AreEqual(64, g.Length);
            Assert.AreEqual((byte)0xff, g[0]);
            Assert.AreEqual((byte)0x7f, g[9]);
            Assert.AreEqual((byte)3, g[10]);
            Assert.AreEqual((byte)1, g[11]);
            CollectionAssert.AreEqual(FromHex(ReadyDealerVector), Zmtp.Ready("DEALER"));
        }

        [Test]
        public void DisposeJoinsTheClientThreadWhenNoDaemonAnswers()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop(); // nothing listens there now
            var client = new WorldBridgeClient(new ClientOptions { Address = "tcp://127.0.0.1:" + port, ReconnectMinDelayS = 0.05 });
            client.Start();
            System.Threading.Thread.Sleep(200);
            Assert.AreNotEqual(ClientState.Connected, client.State);
            client.Dispose();
            Assert.IsFalse(client.IsAlive);
            Assert.AreEqual(ClientState.Stopped, client.State);
        }
    }
}
