// The latest-frame slot between the client thread, which puts every frame it receives, and the game thread,
// which takes the newest one: one frame, newest wins, pixel buffers swapped (never copied) between the
// received message, the slot and the taker's variable.
namespace WorldBridge.Core
{
    sealed class FrameSlot
    {
        readonly object _lock = new object();
        readonly FrameHeader _header = new FrameHeader();
        byte[] _pixels;
        int _length;
        bool _full;
        int _sinceTake; // frames put since the last TryTake

        /// <summary>Put a frame: `header` is copied, frame `index` of `message` is swapped into the slot (the
        /// message gets the slot's previous buffer back, to recycle). Returns true when it replaced a frame
        /// nobody took.</summary>
        public bool Put(FrameHeader header, ZmtpMessage message, int index)
        {
            lock (_lock)
            {
                bool replaced = _full;
                message.SwapFrame(index, ref _pixels);
                _length = message.Lengths[index];
                _header.CopyFrom(header);
                _full = true;
                _sinceTake++;
                return replaced;
            }
        }

        /// <summary>Take the frame if one was put since the last call (see WorldBridgeClient.TryTakeFrame).</summary>
        public bool TryTake(FrameHeader header, ref byte[] pixels, out int length)
        {
            lock (_lock)
            {
                length = 0;
                if (!_full) return false;
                header.CopyFrom(_header);
                var mine = _pixels;
                _pixels = pixels;
                pixels = mine;
                length = _length;
                _full = false;
                _sinceTake = 0;
                return true;
            }
        }

        /// <summary>Frames put since the last TryTake (taken or replaced: not yet consumed).</summary>
        public int SinceTake { get { lock (_lock) return _sinceTake; } }
    }
}
