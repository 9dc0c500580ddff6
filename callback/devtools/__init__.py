"""Developer tools: the WeCom emulator, the AI-bot side, the callback simulator, the sandbox and
the pytest plugin.

Nothing here is needed to serve real WeCom; all of it stands in for WeCom on 127.0.0.1.
"""
