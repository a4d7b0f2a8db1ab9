// What a WorldBridgeClient connects to and asks for, and its timings. The client thread reads them while it
// runs: set them before Start.
using System;

namespace WorldBridge.Core
{
    public sealed class ClientOptions
    {
        /// <summary>tcp://HOST:PORT of the daemon.</summary>
        public string Address = "tcp://127.0.0.1:5557";
        /// <summary>What to ask for; Credits and Prompt are overwritten with the options below.</summary>
        public HelloRequest Hello = new HelloRequest();
        /// <summary>Protocol 1.2: the scene in text for worlds whose welcome lists "prompt" (others ignore it),
        /// sent in every hello; empty: the world's default. WorldBridgeClient.Reset with a prompt replaces it
        /// for the episodes after, reconnects included.</summary>
        public string Prompt = "";
        /// <summary>Frame credits kept outstanding (1-3 is right; more only adds latency).</summary>
        public int Credits = 2;
        /// <summary>Count the frames received since the last TryTakeFrame against the credits, so the daemon
        /// makes at most Credits frames per frame taken: it idles while nobody takes frames.</summary>
        public bool PaceToConsumer = false;
        public double ConnectTimeoutS = 3, HandshakeTimeoutS = 10;
        public double ReconnectMinDelayS = 0.25, ReconnectMaxDelayS = 4;
        /// <summary>Send a ping when nothing was sent for this long (keeps the session from expiring).</summary>
        public double KeepAliveS = 5;
        /// <summary>Reconnect when nothing arrived for this long (the daemon PINGs every 10 s).</summary>
        public double SilenceTimeoutS = 30;
        /// <summary>How long a blocking read or write in the middle of a message may take.</summary>
        public int IoTimeoutMs = 5000;
        public int StopTimeoutMs = 2000;
        /// <summary>Where the thread sleeps waiting for data; also the worst extra delay before an input is sent.</summary>
        public int PollMicroseconds = 1000;
        /// <summary>Diagnostics (called on the client thread).</summary>
        public Action<string> Log;
    }
}
