#!/bin/bash
GPT_ARGS="--num-layers 32"
echo "$GPT_ARGS"
