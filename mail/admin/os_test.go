package admin_test

import "os"

var osStat = os.Stat
