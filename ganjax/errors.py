"""The one exception type for mistakes a user can fix (config, data, paths)."""


class GanjaxError(Exception):
  """A user-fixable error; its message is one line naming the bad value and the fix.

  `ganjax.main` prints it without a traceback and exits with status 1.
  """
