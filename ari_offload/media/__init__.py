"""The media plane: a call's audio in and out, behind one port, over a chosen transport.

    inbound   transport -> (RTP: rtp.RtpPacket.parse -> jitter.JitterBuffer -> g711 decode)
              -> MediaFrame -> port.TapSet.publish -> every open port.tap()
              (the conversation, a recorder, a detector: each its own bounded queue)
    outbound  port.play(pcm) / play_payload(g711) -> playout.Playout (20 ms frames,
              positions, marks) -> transport (RTP: packetizer.RtpPacketizer, one packet
              per pacer.Pacer slot) ; played / flush() -> cut position / drained()

``port.MediaPort`` is all the rest of the app sees. ``transports.TRANSPORTS`` maps the
``MediaSettings.transport`` name to an opener that returns the port with the externalMedia
request for Asterisk (``port.MediaLink``); ``udp`` is the "rtp" transport and the only module
here that touches the event loop or a socket. Everything else is a sans-IO core.
"""
