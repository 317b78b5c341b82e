import { ErrorNote, Link, TaskTable, useResource, type Task } from '../ui.js';

export function TaskPage(props: { id: string }) {
  const task = useResource<Task>(`/v1/tasks/${encodeURIComponent(props.id)}`);
  return (
    <>
      <h1 tabIndex={-1}>Task {task.data ? task.data.id : ''}</h1>
      <ErrorNote error={task.error} />
      {task.data ? (
        <>
          <TaskTable tasks={[task.data]} caption="The task" />
          {task.data.instanceId ? (
            <p>
              Instance: <Link to={`/instances/${task.data.instanceId}`}>{task.data.instanceId}</Link>
            </p>
          ) : null}
        </>
      ) : null}
    </>
  );
}
