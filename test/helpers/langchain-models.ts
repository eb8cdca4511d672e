/**
 * The scripted chat model and prompt the LangChain.js runs of the tests
 * share: no network, no API key.
 */
import type { LangSmithParams } from '@langchain/core/language_models/chat_models';
import { AIMessage } from '@langchain/core/messages';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { FakeBuiltModel } from '@langchain/core/testing';

/**
 * The fakes of @langchain/core report no model name (their getLsParams says
 * only ls_provider: <class name>); a provider integration such as ChatOpenAI
 * overrides getLsParams to name its provider and model, and so does this one.
 */
export class FakeChatOpenAI extends FakeBuiltModel {
  override getLsParams(options: this['ParsedCallOptions']): LangSmithParams {
    return { ...super.getLsParams(options), ls_provider: 'openai', ls_model_name: 'gpt-4o-mini' };
  }
}

/**
 * A model that first asks for refund_status of order 551902, then answers.
 * bindTools would return a plain FakeBuiltModel and lose the getLsParams
 * override; the scripted answer carries the tool call either way.
 */
export function refundModel(): FakeChatOpenAI {
  return new FakeChatOpenAI()
    .respondWithTools([{ id: 'call_refund', name: 'refund_status', args: { order_id: '551902' } }])
    .respond(new AIMessage('The refund of order 551902 was issued.'));
}

export const REFUND_PROMPT = ChatPromptTemplate.fromMessages([
  ['system', 'You are a support agent.'],
  ['human', 'What is the refund status of order {order}?'],
]);
