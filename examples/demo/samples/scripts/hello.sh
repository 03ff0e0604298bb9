#!/bin/sh
echo "hello from a clean script"
