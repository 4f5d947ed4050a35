#!/bin/bash
NNODES=1
NPUS_PER_NODE=8
GPT_ARGS="
    --tensor-model-parallel-size 8 \
    --num-layers 32 \
    --hidden-size 4096 \
    --num-attention-heads 32 \
    --frobnicate-experts 3 \
    --global-batch-size 64 \
    --seq-length 4096 \
    --vocab-size 32000
"
torchrun --nnodes $NNODES --nproc_per_node $NPUS_PER_NODE pretrain_gpt.py $GPT_ARGS
