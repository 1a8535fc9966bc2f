#!/usr/bin/env bash
# CFLAGS is the caller's (`make CFLAGS=-O0`): setting it must keep what the
# build needs, the language standard, the include paths, the warnings as
# errors and the dependency files (Makefile, REQ_CFLAGS).  This fails,
# showing the command, if `make -n CFLAGS=-O0` compiles without one of them.
set -u
cd "$(dirname "$0")/.."
cmd=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n -B CFLAGS=-O0 \
    SANITIZE= build/default/proto/codec.o | grep -- ' -c ')
for flag in -O0 -std=c11 -Iproto -Ibroker -Wall -Werror -MMD; do
	case " $cmd " in
	*" $flag "*) ;;
	*)
		echo "build_flags: make CFLAGS=-O0 compiles without $flag:"
		echo "  $cmd"
		exit 1
		;;
	esac
done
echo "build_flags: make CFLAGS=-O0 keeps the standard, includes, warnings and -MMD"
